// appmodel console: follows a running job, reads a licence file into its text box.
// No framework, no inline script (the content security policy allows this file only).
"use strict";

function follow(box) {
  const id = box.dataset.job;
  const tick = async () => {
    try {
      const r = await fetch(`/jobs/${id}.json`, { credentials: "same-origin" });
      if (!r.ok) return;
      const v = await r.json();
      const cur = document.getElementById("job");
      // The server escaped every value in this HTML.
      cur.outerHTML = v.html;
      if (!v.finished) setTimeout(tick, 500);
    } catch (e) {
      setTimeout(tick, 2000);
    }
  };
  setTimeout(tick, 300);
}

document.addEventListener("DOMContentLoaded", () => {
  const box = document.getElementById("job");
  if (box && box.dataset.state === "running") follow(box);
  for (const input of document.querySelectorAll("input[type=file][data-fills]")) {
    input.addEventListener("change", async () => {
      const target = document.getElementById(input.dataset.fills);
      if (input.files.length && target) target.value = await input.files[0].text();
    });
  }
});
