// The "on a call now" list, kept current by server-sent events (the page works without this).
"use strict";
(function () {
  var list = document.getElementById("live-calls");
  var note = document.getElementById("live-note");
  if (!list || !note || !window.EventSource) {
    return;
  }
  var source = new EventSource("/owner/live/events");
  source.addEventListener("calls", function (event) {
    var lines = JSON.parse(event.data);
    if (lines.length === 0) {
      lines = ["No calls right now."];
    }
    list.replaceChildren.apply(list, lines.map(function (line) {
      var item = document.createElement("li");
      item.textContent = line;
      return item;
    }));
    note.textContent = "This list updates by itself.";
  });
})();
