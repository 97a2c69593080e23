// Plaid link progress: polls the job's JSON status (poller.js) and reloads the page when
// the job has finished, so the server renders the final state (and any follow-up button).
(function () {
  "use strict";

  var FINISHED = ["done", "duplicate", "failed"];
  var box = document.getElementById("link-progress");
  if (!box || FINISHED.indexOf(box.getAttribute("data-status")) >= 0) {
    return;
  }
  var statusBadge = document.getElementById("link-status");
  var message = document.getElementById("link-message");

  window.pollProgress(
    box.getAttribute("data-status-url"),
    parseInt(box.getAttribute("data-poll-ms") || "1500", 10),
    function (job) {
      statusBadge.textContent = job.status;
      statusBadge.className = "badge status-" + job.status;
      message.textContent = job.message;
      return job.finished;
    },
    function (text) {
      message.textContent = text;
    }
  );
})();
