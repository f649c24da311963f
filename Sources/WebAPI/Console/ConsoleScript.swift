import NIOCore

/// The console's one script (served from the appliance; the pages carry no inline script, so
/// the Content-Security-Policy allows only `'self'`): times in the viewer's zone with UTC on
/// hover, the web terminal's page and the recording player. Everything else works without it.
enum ConsoleScript {
    static let bytes = ByteBuffer(string: source)

    static let source = #"""
        (function () {
          "use strict";

          function say(element, text) { if (element) element.textContent = text; }

          // Times are written in UTC; the viewer reads them in their own zone, UTC on hover.
          function localTimes() {
            document.querySelectorAll("time[datetime]").forEach(function (element) {
              var utc = element.getAttribute("datetime"), when = new Date(utc);
              if (isNaN(when.getTime())) return;
              element.title = utc + " (UTC)";
              element.textContent = when.toLocaleString(undefined, {
                year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit", second: "2-digit", timeZoneName: "short"
              });
            });
            document.querySelectorAll("[data-zone-note]").forEach(function (element) {
              element.textContent = "times in your time zone (" + Intl.DateTimeFormat().resolvedOptions().timeZone + "); hover a time for UTC";
            });
          }

          function missing(state) {
            if (window.Terminal) return false;
            say(state, "The terminal component could not be loaded: the appliance needs Debian's node-xterm package. Ask an administrator.");
            return true;
          }

          function newTerminal(container, columns, rows) {
            var options = { rendererType: "canvas", screenReaderMode: true, cursorBlink: false, fontSize: 15, scrollback: 5000 };
            if (columns && rows) { options.cols = columns; options.rows = rows; }
            var terminal = new window.Terminal(options);
            terminal.open(container);
            return terminal;
          }

          function terminalPage(container) {
            var state = document.getElementById("terminal-status"), closer = document.getElementById("terminal-close");
            var name = container.dataset.login + "@" + container.dataset.node;
            if (missing(state)) { container.dataset.state = "ended"; closer.disabled = true; return; }
            var terminal = newTerminal(container);
            terminal.fit();
            var address = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/web/terminal/socket?node=" +
              encodeURIComponent(container.dataset.node) + "&login=" + encodeURIComponent(container.dataset.login) +
              "&cols=" + terminal.cols + "&rows=" + terminal.rows;
            var socket = new WebSocket(address), decoder = new TextDecoder(), encoder = new TextEncoder();
            var ended = false, closing = false;
            socket.binaryType = "arraybuffer";
            function finish(text) {
              if (container.dataset.state === "ended") return;
              container.dataset.state = "ended";
              closer.disabled = true;
              say(state, text);
            }
            socket.onmessage = function (event) {
              if (typeof event.data !== "string") {
                terminal.write(decoder.decode(new Uint8Array(event.data), { stream: true }));
                return;
              }
              var notice = JSON.parse(event.data);
              if (notice.type === "open") {
                container.dataset.state = "open";
                say(state, "Connected to " + name + ". Close session ends it.");
                terminal.focus();
              } else if (notice.type === "refused") {
                ended = true;
                finish("Not connected: " + notice.message);
              } else if (notice.type === "ended") {
                ended = true;
                finish("Session ended" + (notice.message ? ": " + notice.message : ".") +
                       (notice.status !== undefined && notice.status !== null ? " (exit status " + notice.status + ")" : ""));
              }
            };
            socket.onclose = function () {
              if (closing) finish("You closed the session.");
              else if (!ended) finish("The connection to the console was lost. Reload the page to open a new session.");
            };
            terminal.on("data", function (data) { if (socket.readyState === WebSocket.OPEN) socket.send(encoder.encode(data)); });
            terminal.on("resize", function (size) {
              if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ type: "resize", cols: size.cols, rows: size.rows }));
            });
            window.addEventListener("resize", function () { terminal.fit(); });
            closer.addEventListener("click", function () { closing = true; socket.close(); });
          }

          // The session's commands and connections, each a button that moves playback to it.
          function loadActivity(address, started, done) {
            var list = document.getElementById("player-activity"), state = document.getElementById("player-activity-status");
            fetch(address, { credentials: "same-origin" }).then(function (response) {
              if (!response.ok) throw new Error("the console answered " + response.status);
              return response.json();
            }).then(function (page) {
              if (!page.items.length) {
                say(state, "Enhanced recording saw no command or connection in this session (or it was not on for it).");
                return done([]);
              }
              var items = page.items.map(function (entry) {
                var offset = Math.max(0, (Date.parse(entry.time) / 1000) - started);
                var element = document.createElement("li"), button = document.createElement("button");
                button.type = "button";
                var whole = Math.floor(offset);
                button.textContent = Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0") + "  " +
                  (entry.kind === "network" ? "connection: " : "command: ") + entry.text;
                element.appendChild(button);
                list.appendChild(element);
                return { offset: offset, element: element };
              });
              if (!page.complete) say(state, "The first " + items.length + " commands and connections of this session; the audit log holds the rest.");
              done(items);
            }).catch(function (error) {
              say(state, "The commands and connections cannot be shown: " + error.message + ".");
              done([]);
            });
          }

          function playerPage(container) {
            var state = document.getElementById("player-status"), play = document.getElementById("player-play");
            var speed = document.getElementById("player-speed"), seek = document.getElementById("player-seek");
            var skip = document.getElementById("player-skip-idle"), position = document.getElementById("player-position");
            if (missing(state)) return;
            fetch(container.dataset.src, { credentials: "same-origin" }).then(function (response) {
              if (!response.ok) throw new Error(response.status === 404 ? "there is no recording of this session that you may replay" : "the console answered " + response.status);
              return response.text();
            }).then(function (text) {
              var lines = text.split("\n").filter(function (line) { return line.length > 0; });
              var header = JSON.parse(lines[0]);
              var events = lines.slice(1).map(function (line) { return JSON.parse(line); })
                .filter(function (event) { return Array.isArray(event) && (event[1] === "o" || event[1] === "r"); });
              var terminal = newTerminal(container, header.width || 80, header.height || 24);
              var times = [], duration = 0, at = 0, next = 0, playing = false, last = 0;
              function retime() {
                var total = 0, previous = 0;
                times = events.map(function (event) {
                  var gap = Math.max(0, event[0] - previous);
                  previous = event[0];
                  total += skip.checked ? Math.min(gap, 1) : gap;
                  return total;
                });
                duration = times.length ? times[times.length - 1] : 0;
                seek.max = String(duration);
              }
              function clock(seconds) {
                var whole = Math.floor(seconds);
                return Math.floor(whole / 60) + ":" + String(whole % 60).padStart(2, "0");
              }
              var activity = [];
              // Where in playback a moment of the session falls (idle time may be skipped).
              function playbackTime(real) {
                var index = -1;
                for (var i = 0; i < events.length && events[i][0] <= real; i++) index = i;
                if (index < 0) return 0;
                var after = real - events[index][0];
                return Math.min(duration, times[index] + (skip.checked ? Math.min(after, 1) : after));
              }
              function showActivity() {
                activity.forEach(function (item) {
                  if (item.at <= at) item.element.setAttribute("data-past", ""); else item.element.removeAttribute("data-past");
                });
              }
              function show() {
                seek.value = String(at);
                say(position, clock(at) + " / " + clock(duration));
                showActivity();
              }
              function apply(event) {
                if (event[1] === "o") { terminal.write(event[2]); return; }
                var size = /^(\d+)x(\d+)$/.exec(event[2]);
                if (size) terminal.resize(Number(size[1]), Number(size[2]));
              }
              function moveTo(target) {
                if (target < at) { terminal.reset(); next = 0; }
                while (next < events.length && times[next] <= target) apply(events[next++]);
                at = target;
                show();
              }
              function tick(now) {
                if (!playing) return;
                moveTo(Math.min(duration, at + (now - last) / 1000 * Number(speed.value)));
                last = now;
                if (at >= duration) {
                  playing = false;
                  play.textContent = "Play";
                  container.dataset.state = "ended";
                  say(state, "End of the recording.");
                  return;
                }
                requestAnimationFrame(tick);
              }
              play.addEventListener("click", function () {
                playing = !playing;
                play.textContent = playing ? "Pause" : "Play";
                if (playing) {
                  if (at >= duration) moveTo(0);
                  container.dataset.state = "playing";
                  say(state, "Playing.");
                  last = performance.now();
                  requestAnimationFrame(tick);
                } else {
                  say(state, "Paused.");
                }
              });
              seek.addEventListener("input", function () { moveTo(Number(seek.value)); });
              skip.addEventListener("change", function () { terminal.reset(); next = 0; at = 0; retime(); moveTo(0); });
              retime();
              show();
              // The start to the microsecond (ours); asciicast's timestamp is whole seconds, which
              // placed every command up to a second late.
              var ours = header.portcullis || {};
              var started = typeof ours.started === "number" ? ours.started : (header.timestamp || 0);
              loadActivity(container.dataset.activity, started, function (items) {
                activity = items;
                items.forEach(function (item) {
                  item.at = playbackTime(item.offset);
                  item.element.querySelector("button").addEventListener("click", function () { moveTo(item.at); });
                });
                showActivity();
              });
              skip.addEventListener("change", function () {
                activity.forEach(function (item) { item.at = playbackTime(item.offset); });
                showActivity();
              });
              play.disabled = false;
              container.dataset.state = "ready";
              say(state, events.length ? "Ready: Play starts the recording." : "This recording has no output.");
            }).catch(function (error) {
              say(state, "The recording cannot be played: " + error.message + ".");
            });
          }

          document.addEventListener("DOMContentLoaded", function () {
            localTimes();
            var terminal = document.getElementById("terminal");
            if (terminal) terminalPage(terminal);
            var player = document.getElementById("player");
            if (player) playerPage(player);
          });
        })();
        """#
}
