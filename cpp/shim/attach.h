// The attach protocol on DIR/attach.sock (a unix stream socket). Every message both ways is a frame:
//   u8 type, u32 big-endian payload length, payload
// client -> shim: 0 stdin data (written to the container's stdin when it was opened: openStdin)
//                 3 close stdin (EOF for the container; with a terminal, its EOF character ^D)
//                 4 resize: u16 cols, u16 rows, big-endian (the terminal's size; ignored without one)
// shim -> client: 1 stdout data, 2 stderr data (live output from the moment of attaching; the
//                   history is in container.log; with a terminal all output is stdout)
//                 5 exit: the JSON of exit.json, each time the container exits
// A client that does not keep up (over 1 MiB unread) is disconnected; the container never waits.
#pragma once

namespace nsbox {
namespace attach {

enum Frame : int { kStdin = 0, kStdout = 1, kStderr = 2, kCloseStdin = 3, kResize = 4, kExit = 5 };
constexpr unsigned kHeader = 5;
constexpr unsigned kMaxPayload = 1 << 20;
constexpr unsigned kMaxPending = 1 << 20;

}  // namespace attach
}  // namespace nsbox
