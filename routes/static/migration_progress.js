// A migration run's progress: polls the run's JSON and shows each step as it is recorded;
// reloads the page when the run has ended, so the server renders the outcome (and the
// confirmation form after a plan). Vendored, no dependencies; loaded from this origin only.
(function () {
  "use strict";

  var box = document.getElementById("run-progress");
  if (!box) {
    return;
  }
  var progressUrl = box.getAttribute("data-progress-url");
  var intervalMs = parseInt(box.getAttribute("data-poll-ms") || "1000", 10);
  var statusBadge = document.getElementById("run-status");
  var stepList = document.getElementById("run-steps");
  var note = document.getElementById("run-note");

  function show(run) {
    statusBadge.textContent = run.status;
    statusBadge.className = "badge status-" + run.status;
    while (stepList.firstChild) {
      stepList.removeChild(stepList.firstChild);
    }
    run.steps.forEach(function (step) {
      var item = document.createElement("li");
      item.className = step.ok ? "ok" : "warn";
      var name = document.createElement("strong");
      name.textContent = step.step;
      item.appendChild(name);
      item.appendChild(document.createTextNode(": " + step.summary));
      stepList.appendChild(item);
    });
  }

  function poll() {
    fetch(progressUrl, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
    })
      .then(function (response) {
        if (response.status === 401 || response.status === 404) {
          window.location.reload();
          return null;
        }
        if (!response.ok) {
          throw new Error("status " + response.status);
        }
        return response.json();
      })
      .then(function (run) {
        if (run === null) {
          return;
        }
        show(run);
        if (!run.active) {
          window.location.reload();
        } else {
          window.setTimeout(poll, intervalMs);
        }
      })
      .catch(function () {
        if (note) {
          note.textContent = "Lost contact with the server; still trying…";
        }
        window.setTimeout(poll, intervalMs * 2);
      });
  }

  window.setTimeout(poll, intervalMs);
})();
