// New/Edit Task and Project: show only the fields that apply, offer only connections of the
// right kind, add formset rows, and turn code fields into CodeMirror editors.
(function () {
  "use strict";
  const form = document.querySelector("form#task_form, form#project_form");
  if (!form) {
    return;
  }
  const editors = [];

  function valueOf(name) {
    const fields = form.querySelectorAll('[name="' + name + '"]');
    for (const field of fields) {
      if (field.type === "checkbox") {
        return field.checked ? "on" : "off";
      }
      if (field.type !== "radio" || field.checked) {
        return field.value;
      }
    }
    return "";
  }

  function applies(element) {
    const value = valueOf(element.dataset.showField);
    const wanted = element.dataset.showValues.split(" ");
    return wanted.includes("*") ? value !== "" : wanted.includes(value);
  }

  // A connection select offers only the connections whose kind matches its controller.
  function filterKinds(select) {
    const kind = valueOf(select.dataset.kindFrom);
    let selectedHidden = false;
    for (const option of select.options) {
      if (option.dataset.kind) {
        option.hidden = option.disabled = option.dataset.kind !== kind;
        selectedHidden ||= option.selected && option.hidden;
      }
    }
    if (selectedHidden) {
      select.value = "";
    }
  }

  function queryMode() {
    return valueOf("source_kind") === "ssh" ? "text/x-sh" : "text/x-sql";
  }

  function refresh() {
    // A script-only task always runs its script.
    const useScript = form.querySelector('[name="use_script"]');
    if (useScript && valueOf("source_kind") === "python") {
      useScript.checked = true;
    }
    for (const element of form.querySelectorAll("[data-show-field]")) {
      element.hidden = !applies(element);
    }
    for (const select of form.querySelectorAll("select[data-kind-from]")) {
      filterKinds(select);
    }
    for (const editor of editors) {
      if (editor.getTextArea().name === "query-text") {
        editor.setOption("mode", queryMode());
      }
      editor.refresh(); // CodeMirror measures itself again once its section is visible
    }
  }

  function addRow(prefix) {
    const total = form.querySelector("#id_" + prefix + "-TOTAL_FORMS");
    const template = document.getElementById(prefix + "-empty");
    const html = template.innerHTML.replace(/__prefix__/g, total.value);
    document.getElementById(prefix + "-rows").insertAdjacentHTML("beforeend", html);
    total.value = String(Number(total.value) + 1);
    refresh();
  }

  function startEditors() {
    if (!window.CodeMirror) {
      return; // the plain textarea still works
    }
    for (const area of form.querySelectorAll("textarea.code-editor")) {
      const editor = window.CodeMirror.fromTextArea(area, {
        lineNumbers: true,
        mode: area.name === "query-text" ? queryMode() : area.dataset.mode,
        indentUnit: 4,
        tabSize: 4,
        viewportMargin: Infinity,
        readOnly: area.disabled ? "nocursor" : false, // a locked code field (no permission to write code)
      });
      editor.getWrapperElement().dataset.field = area.name;
      editors.push(editor);
    }
  }

  form.addEventListener("change", refresh);
  form.addEventListener("click", function (event) {
    const button = event.target.closest("[data-add-row]");
    if (button) {
      event.preventDefault();
      addRow(button.dataset.addRow);
    }
  });
  startEditors();
  refresh();
})();
