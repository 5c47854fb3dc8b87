// native/src/stream/client_stream.h — the agreed interface between the L7 engine (helper
// l7native) and native TLS termination (helper tlsnative). Create it with exactly this content
// if it is not there yet (both branches add it; identical content merges cleanly). Changes to it
// after that: say so in your final report.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>

namespace enclaver {

// The client side of an ingress connection, after any TLS handshake, as a non-blocking byte
// stream owned by one reactor thread: a plain socket, or TLS terminated with OpenSSL. Engines
// read and write plaintext through it and never learn which.
class ClientStream {
 public:
  enum class Io : int { kOk, kWouldBlock, kEof, kError };
  struct Result {
    Io io = Io::kError;
    size_t bytes = 0;  // kOk: bytes moved (> 0)
    int error = 0;     // kError: an errno (EPROTO for a TLS failure)
  };

  virtual ~ClientStream() = default;
  virtual int fd() const = 0;
  // Plaintext in; kEof on the peer's clean end (TLS: close_notify or FIN).
  virtual Result Read(char* buf, size_t len) = 0;
  // Plaintext out; may accept fewer bytes than asked.
  virtual Result Write(const char* buf, size_t len) = 0;
  // No more plaintext out (TLS: close_notify, then shutdown(SHUT_WR)).
  virtual Result ShutdownWrite() = 0;
  // After kWouldBlock: the epoll events to wait for (TLS can need EPOLLOUT to make a read progress).
  virtual uint32_t WaitEvents() const = 0;
  // Decrypted bytes are buffered inside: call Read again before waiting on epoll.
  virtual bool HasBuffered() const = 0;
  // Gives up the fd (the caller then owns it) or returns -1 when the stream cannot be handed on
  // as a bare socket (TLS state cannot move to JavaScript).
  virtual int Release() = 0;
};

// A plain socket (owned from here on).
std::unique_ptr<ClientStream> PlainClientStream(int fd);

}  // namespace enclaver
