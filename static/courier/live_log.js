// The live log on Task Details: asks the run's log endpoint for the lines after the
// last one shown, appends them, and keeps asking while the run is not finished.
(function () {
  "use strict";
  const log = document.getElementById("live-log");
  if (!log) {
    return;
  }
  const note = document.getElementById("live-log-note");
  const badges = document.querySelectorAll("[data-live-status]");
  const POLL_MS = 1500;
  // Above the longest log a run writes (a script's output is cut at 10,000 lines), so a finished
  // run's log is shown whole; only a log longer still drops its oldest lines from the page.
  const MAX_LINES = 20000;
  let after = 0;

  // The status badges of the page (the task's and the log's) follow the run too.
  function showStatus(data) {
    for (const badge of badges) {
      const span = document.createElement("span");
      span.className = "status status-" + data.status;
      span.textContent = data.status_label;
      badge.replaceChildren(span);
    }
  }

  function append(lines) {
    const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 20;
    for (const line of lines) {
      const row = document.createElement("span");
      row.className = "log-line level-" + line.level;
      row.dataset.id = line.id;
      // textContent: a log line is data, never markup.
      row.textContent = line.at + " " + line.level.toUpperCase().padEnd(7) + " [" + line.stage + "] " + line.message + "\n";
      log.appendChild(row);
      after = line.id;
    }
    while (log.childElementCount > MAX_LINES) {
      log.firstElementChild.remove();
    }
    if (atBottom) {
      log.scrollTop = log.scrollHeight;
    }
  }

  async function poll() {
    let data;
    try {
      const response = await fetch(log.dataset.url + "?after=" + after, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) {
        throw new Error("the server answered " + response.status);
      }
      data = await response.json();
    } catch (error) {
      note.textContent = "Could not load the log (" + error.message + "); trying again.";
      window.setTimeout(poll, POLL_MS * 4);
      return;
    }
    append(data.lines);
    showStatus(data);
    log.dataset.status = data.status;
    if (data.more) {
      poll();
    } else if (data.finished) {
      note.textContent = "Run " + data.status_label.toLowerCase() + "; the log is complete.";
      log.dataset.complete = "true";
    } else {
      note.textContent = "Run " + data.status_label.toLowerCase() + "; the log updates by itself.";
      window.setTimeout(poll, POLL_MS);
    }
  }

  poll();
})();
