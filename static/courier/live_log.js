// Task Details while it is open. Two loops:
// - the log: asks the followed run's log endpoint for the lines after the last one shown,
//   appends them, and keeps asking while the run is not finished;
// - the state: asks the task's live endpoint (tasks/views.py task_live) whether anything the
//   page shows of its runs changed (the ETag says), and if so replaces the buttons, the run
//   history and the file history, and switches the log to the run the page now follows.
(function () {
  "use strict";
  const log = document.getElementById("live-log");
  const panel = document.getElementById("live-log-module");
  if (!log || !panel) {
    return;
  }
  const note = document.getElementById("live-log-note");
  const title = document.getElementById("live-log-title");
  // A run pinned by ?run= keeps its log here; the task's badge still follows the task.
  const pinned = panel.dataset.pinned === "true";
  const LOG_MS = 1500;
  const STATE_MS = 3000; // while a run is going
  const IDLE_MS = 10000; // while none is
  // Above the longest log a run writes (a script's output is cut at 10,000 lines), so a finished
  // run's log is shown whole; only a log longer still drops its oldest lines from the page.
  const MAX_LINES = 20000;
  let after = 0;
  let generation = 0; // a new followed run makes older log answers stale
  let version = panel.dataset.liveVersion || "";
  const ACTIVE = ["queued", "running"];
  let idle = panel.dataset.liveIdle === "true"; // no run queued or running: ask less often
  let stateTimer = null;
  let stateBusy = false;

  // The status badges of the page: "task" (the run the page follows) and "log" (the run whose log is shown).
  function showStatus(which, status, label) {
    for (const badge of document.querySelectorAll('[data-live-status="' + which + '"]')) {
      const span = document.createElement("span");
      span.className = "status status-" + status;
      span.textContent = label;
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

  async function pollLog(mine) {
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
      if (mine === generation) {
        note.textContent = "Could not load the log (" + error.message + "); trying again.";
        window.setTimeout(() => pollLog(mine), LOG_MS * 4);
      }
      return;
    }
    if (mine !== generation) {
      return; // the page follows another run now
    }
    append(data.lines);
    showStatus("log", data.status, data.status_label);
    if (log.dataset.status && log.dataset.status !== data.status) {
      askState(0); // the run moved on: the history and the buttons follow at once
    }
    log.dataset.status = data.status;
    if (data.more) {
      pollLog(mine);
    } else if (data.finished) {
      note.textContent = "Run " + data.status_label.toLowerCase() + "; the log is complete.";
      log.dataset.complete = "true";
    } else {
      note.textContent = "Run " + data.status_label.toLowerCase() + "; the log updates by itself.";
      window.setTimeout(() => pollLog(mine), LOG_MS);
    }
  }

  // Show the log of another run from its first line.
  function follow(run) {
    generation += 1;
    after = 0;
    log.replaceChildren();
    log.hidden = false;
    log.dataset.url = run.log_url;
    delete log.dataset.complete;
    delete log.dataset.status;
    title.textContent = "Log of run " + run.id;
    note.textContent = "Loading…";
    pollLog(generation);
  }

  function replace(id, html) {
    const element = document.getElementById(id);
    if (element) {
      element.innerHTML = html; // rendered by the server's templates, escaped there
    }
  }

  function askState(ms) {
    window.clearTimeout(stateTimer);
    stateTimer = window.setTimeout(pollState, ms);
  }

  async function pollState() {
    if (stateBusy) {
      askState(LOG_MS);
      return;
    }
    stateBusy = true;
    try {
      await fetchState();
    } finally {
      stateBusy = false;
    }
    askState(idle ? IDLE_MS : STATE_MS);
  }

  async function fetchState() {
    let response;
    try {
      // The page's own query string: the history tables stay on the page being looked at.
      response = await fetch(panel.dataset.liveUrl + window.location.search, {
        headers: { Accept: "application/json", "If-None-Match": version },
        credentials: "same-origin",
        cache: "no-store",
      });
    } catch (error) {
      idle = true; // try again later
      return;
    }
    if (response.status === 200) {
      version = response.headers.get("ETag") || "";
      const data = await response.json();
      replace("controls", data.controls);
      replace("run-history", data.runs);
      replace("file-history", data.files);
      if (data.current) {
        showStatus("task", data.current.status, data.current.status_label);
      }
      if (data.current && !pinned) {
        showStatus("log", data.current.status, data.current.status_label);
        if (data.current.log_url !== log.dataset.url) {
          follow(data.current);
        } else if (!data.current.finished && log.dataset.complete === "true") {
          follow(data.current); // a retry of the same run went on: read its log again
        }
      }
      idle = (!data.current || !ACTIVE.includes(data.current.status)) && !data.resending;
    }
  }

  if (log.dataset.url) {
    pollLog(generation);
  }
  askState(idle ? IDLE_MS : STATE_MS);
})();
