// A migration run's progress: polls the run's JSON (poller.js) and shows each step as it is
// recorded; reloads the page when the run has ended, so the server renders the outcome
// (and the confirmation form after a plan).
(function () {
  "use strict";

  var box = document.getElementById("run-progress");
  if (!box) {
    return;
  }
  var statusBadge = document.getElementById("run-status");
  var stepList = document.getElementById("run-steps");
  var note = document.getElementById("run-note");

  window.pollProgress(
    box.getAttribute("data-progress-url"),
    parseInt(box.getAttribute("data-poll-ms") || "1000", 10),
    function (run) {
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
      return !run.active;
    },
    function (text) {
      if (note) {
        note.textContent = text;
      }
    }
  );
})();
