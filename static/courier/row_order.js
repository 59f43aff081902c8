// Rows of parameters and destinations are put in order with ↑/↓ (templates/courier/formset_cell.html);
// when the form is sent, the rows that hold something are numbered in the order shown.
(function () {
  "use strict";
  const form = document.querySelector("form#task_form, form#project_form");
  if (!form) {
    return;
  }

  function moved(row, direction) {
    const other = direction === "up" ? row.previousElementSibling : row.nextElementSibling;
    if (!other || !other.classList.contains("form-row")) {
      return;
    }
    if (direction === "up") {
      other.before(row);
    } else {
      other.after(row);
    }
  }

  // An added row that nobody filled in stays out of the numbering: a changed position alone
  // would make Django validate it as a row, and refuse it for its empty fields.
  function untouched(row) {
    const id = row.querySelector("input[name$='-id']");
    if (id && id.value) {
      return false;
    }
    for (const field of row.querySelectorAll("input, select, textarea")) {
      if (field.name.endsWith("-position") || field.type === "hidden") {
        continue;
      }
      if (field.type === "checkbox" || field.type === "radio") {
        if (field.checked !== field.defaultChecked) {
          return false;
        }
      } else if (field.tagName === "SELECT") {
        if ([...field.options].some((option) => option.selected !== option.defaultSelected)) {
          return false;
        }
      } else if (field.value !== field.defaultValue) {
        return false;
      }
    }
    return true;
  }

  form.addEventListener("click", function (event) {
    const button = event.target.closest("button[data-move]");
    if (button) {
      event.preventDefault();
      moved(button.closest("tr.form-row"), button.dataset.move);
    }
  });

  form.addEventListener("submit", function () {
    for (const body of form.querySelectorAll("tbody[id$='-rows']")) {
      let position = 0;
      for (const row of body.querySelectorAll("tr.form-row")) {
        const input = row.querySelector("input[name$='-position']");
        if (input && !untouched(row)) {
          input.value = String(position);
          position += 1;
        }
      }
    }
  });
})();
