/// The page's only script and stylesheet, served from the binary (no CDN, no build step). The script is a few
/// lines: live updates over server-sent events, and videos that play while the pointer is on them.
enum ReviewAssets {
    static let script = #"""
        "use strict";
        (function () {
          function hover(root) {
            root.querySelectorAll(".card video").forEach(function (video) {
              video.addEventListener("mouseenter", function () { video.play().catch(function () {}); });
              video.addEventListener("mouseleave", function () { video.pause(); });
            });
          }
          function listen(after, onJob) {
            var source = new EventSource("/live?after=" + encodeURIComponent(after));
            source.addEventListener("job", function (message) { onJob(JSON.parse(message.data)); });
          }
          // Buttons post in place and say what happened; the change itself arrives as a live update. (Without
          // script, the forms post and come back to the page.)
          function actInPlace(form) {
            form.addEventListener("submit", function (event) {
              event.preventDefault();
              var note = form.querySelector(".note") || form.appendChild(document.createElement("span"));
              note.className = "note";
              note.textContent = " …";
              fetch(form.action, { method: "POST", credentials: "same-origin", headers: { Accept: "application/json" } })
                .then(function (answer) { return answer.text().then(function (text) { return { ok: answer.ok, text: text }; }); })
                .then(function (result) {
                  var message = result.text;
                  try { message = JSON.parse(result.text).message; } catch (e) {}
                  note.textContent = " " + message;
                });
            });
          }
          document.addEventListener("DOMContentLoaded", function () {
            document.querySelectorAll("form.action").forEach(actInPlace);
            var grid = document.getElementById("grid");
            if (grid) {
              hover(grid);
              // Per job, the number of the latest card asked for and of the latest one shown: changes come faster
              // than cards (downloading, then completed, a few ms apart), and their answers may come back in any
              // order. Only the latest answer is shown, in place of the card on the page then; an older one would
              // leave the card behind for good.
              var asked = {}, shown = {};
              listen(grid.dataset.after, function (change) {
                var card = document.getElementById("job-" + change.job);
                if (!card) { return; }
                if (card.dataset.state === change.state && (asked[change.job] || 0) === (shown[change.job] || 0)) { return; }
                var turn = asked[change.job] = (asked[change.job] || 0) + 1;
                fetch("/jobs/" + change.job + "/card", { credentials: "same-origin" })
                  .then(function (answer) { return answer.ok ? answer.text() : null; })
                  .catch(function () { return null; })
                  .then(function (html) {
                    if (asked[change.job] !== turn) { return; }
                    shown[change.job] = turn;
                    var current = document.getElementById("job-" + change.job);
                    if (html === null || !current) { return; }
                    var holder = document.createElement("div");
                    holder.innerHTML = html;
                    var fresh = holder.firstElementChild;
                    current.replaceWith(fresh);
                    hover(fresh.parentNode);
                  });
              });
            }
            var job = document.querySelector(".job[data-job]");
            if (job) {
              listen(job.dataset.after, function (change) {
                if (String(change.job) !== job.dataset.job) { return; }
                job.dataset.state = change.state;
                var label = job.querySelector(".state");
                if (label) { label.textContent = change.state; }
              });
            }
          });
        })();
        """#

    static let style = """
        body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1d1d1f; background: #fafafa; }
        header { padding: 10px 20px; background: #1d1d1f; color: #eee; }
        header a { color: #fff; font-weight: 600; text-decoration: none; }
        main { padding: 16px 20px; }
        .muted { color: #777; }
        .path { font-family: ui-monospace, monospace; font-size: 12px; color: #555; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid #e3e3e3; vertical-align: top; }
        .grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: 14px; }
        .card { background: #fff; border: 1px solid #e3e3e3; border-radius: 8px; padding: 8px; }
        .card video, .job video { width: 100%; border-radius: 6px; background: #000; }
        .card h2 { font-size: 15px; margin: 6px 0 2px; word-break: break-all; }
        .placeholder { aspect-ratio: 16 / 9; display: flex; align-items: center; justify-content: center; background: #eee; border-radius: 6px; color: #666; }
        .state-failed .placeholder { background: #fde8e8; color: #a01010; }
        .state-completed .state { color: #0a7a2f; }
        .state-failed .state, .reason { color: #a01010; }
        .reason { font-size: 13px; word-break: break-word; }
        .prompt { white-space: pre-wrap; }
        .inputs img { max-height: 120px; margin: 0 8px 8px 0; border-radius: 4px; }
        .events { font-size: 13px; } .events time { color: #777; font-family: ui-monospace, monospace; }
        .filter, .action { display: inline-block; margin: 0 8px 12px 0; }
        .note { color: #555; font-size: 13px; }
        .pager { margin-top: 16px; } .pager a, .pager strong { margin-right: 6px; }
        .job video { max-width: 720px; }
        """
}
