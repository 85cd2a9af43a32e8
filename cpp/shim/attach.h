// The shim's two unix stream sockets in its bundle (names in bundle-files.h; clients in
// lib/runtime/shim-attach.ts and shim-events.ts). Every message both ways is a frame:
//   u8 type, u32 big-endian payload length, payload
//
// attach.sock: the container's stdio.
// client -> shim: 0 stdin data (written to the container's stdin when it was opened: openStdin)
//                 3 close stdin (EOF for the container; with a terminal, its EOF character ^D)
//                 4 resize: u16 cols, u16 rows, big-endian (the terminal's size; ignored without one)
// shim -> client: 1 stdout data, 2 stderr data (live output from the moment of attaching; the
//                   history is in container.log; with a terminal all output is stdout). The first
//                   attach client after a start also gets what was printed before it came.
//                 5 exit: the JSON of exit.json, each time the container exits
//
// events.sock: what happens to the container, for the engine; no output, no replay, and it does
// not count as the first attach client. The shim sends only frames of type 6, each one JSON object:
//   {"type":"state", …state.json}   first, on connecting (the state as it is), then at every change
//   {"type":"start","pid","startedAt","restartCount"}   each (re)start
//   {"type":"exit", …exit.json}     each exit (exitCode, signal, finishedAt, oomKilled, error?)
//   {"type":"oom","oomKills"}       the OOM killer killed in the container's cgroup (kills this run)
//   {"type":"health","status","failingStreak"}   the HEALTHCHECK's status changed (starting at each start)
// A final state ("exited" or "stopped") comes last; then the shim hangs up. Frames from clients
// are read and ignored. Unknown types are to be ignored by clients.
//
// A client that does not keep up (over 1 MiB unread) is disconnected; the container never waits.
#pragma once

namespace nsbox {
namespace attach {

enum Frame : int { kStdin = 0, kStdout = 1, kStderr = 2, kCloseStdin = 3, kResize = 4, kExit = 5, kEvent = 6 };
constexpr unsigned kHeader = 5;
constexpr unsigned kMaxPayload = 1 << 20;
constexpr unsigned kMaxPending = 1 << 20;

}  // namespace attach
}  // namespace nsbox
