// TLS terminated on a pump thread, with the OpenSSL 3 that Node itself carries (its symbols are
// exported by the node binary and its headers ship with Node's; the addon links nothing).
//
// TlsContext is one server identity (certificate chain, private key, versions, ciphers) made from
// the PEM text the JS path uses; TlsClientStream is one accepted connection: a non-blocking
// server handshake, then the ClientStream interface over SSL_read/SSL_write.
//
// Invariants:
//  - a TlsContext is shared (shared_ptr) by every stream made with it; a swapped identity only
//    affects streams made afterwards, and the old SSL_CTX (with its key) is freed with its last
//    stream;
//  - the stream owns its fd from construction; Release() never gives it up (TLS state cannot be
//    handed on), the destructor closes it;
//  - bytes read before the stream existed (the rest of a PROXY header's read) are read by OpenSSL
//    before anything from the socket, through the stream's own BIO; that BIO also keeps the errno
//    of the last failed syscall, so SSL_ERROR_SYSCALL reports the socket's errno, not OpenSSL's;
//  - the peer's FIN without close_notify is a clean end (SSL_OP_IGNORE_UNEXPECTED_EOF), as Node's
//    TLSSocket treats it;
//  - WaitEvents() is what the last call that returned kWouldBlock needs (WANT_READ → EPOLLIN,
//    WANT_WRITE → EPOLLOUT).
#pragma once

#include <openssl/ssl.h>

#include <memory>
#include <string>

#include "stream/client_stream.h"

namespace enclaver {

class TlsContext {
 public:
  struct Settings {
    std::string certificate_pem;  // the leaf first, then its chain
    std::string key_pem;          // wiped once the context holds the key
    std::string cipher_list;      // TLS 1.2 ciphers (OpenSSL syntax), empty: OpenSSL's default
    std::string cipher_suites;    // TLS 1.3 suites, empty: OpenSSL's default
  };

  // Null with *error set (never key material) when the PEM or the settings are not usable.
  static std::shared_ptr<TlsContext> Create(Settings& settings, std::string* error);
  ~TlsContext();
  TlsContext(const TlsContext&) = delete;
  TlsContext& operator=(const TlsContext&) = delete;

  SSL_CTX* get() const { return ctx_; }

 private:
  explicit TlsContext(SSL_CTX* ctx) : ctx_(ctx) {}
  SSL_CTX* ctx_;
};

class TlsClientStream : public ClientStream {
 public:
  // `head`: bytes already read from the socket, fed to the handshake first.
  TlsClientStream(int fd, std::shared_ptr<TlsContext> context, std::string head);
  ~TlsClientStream() override;

  // One step of the server handshake: kOk once it is complete, kWouldBlock (then WaitEvents),
  // kError with failure() describing why (kEof is reported as kError: a handshake cut short).
  Result Handshake();
  const std::string& failure() const { return failure_; }

  int fd() const override { return fd_; }
  Result Read(char* buf, size_t len) override;
  Result Write(const char* buf, size_t len) override;
  Result ShutdownWrite() override;
  uint32_t WaitEvents() const override { return wait_events_; }
  bool HasBuffered() const override;
  int Release() override { return -1; }

 private:
  friend struct StreamBio;
  Result Failure(int rc);

  int fd_;
  std::shared_ptr<TlsContext> context_;
  SSL* ssl_ = nullptr;
  std::string head_;
  size_t head_offset_ = 0;
  int last_errno_ = 0;  // of the last failed read/write on the socket
  bool shut_ = false;
  uint32_t wait_events_ = 0;
  std::string failure_;
};

}  // namespace enclaver
