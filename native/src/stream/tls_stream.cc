#include "stream/tls_stream.h"

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>

namespace enclaver {

namespace {

// The reason of the most recent OpenSSL error, as Node words it ("...:SSL routines::http
// request"); the queue is cleared so the next call starts clean.
std::string OpenSslReason(const char* fallback) {
  unsigned long code = ERR_peek_last_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
using BioPtr = std::unique_ptr<BIO, BioFree>;

}  // namespace

// The stream's BIO: reads the bytes read before the stream existed, then the socket. A BIO of
// our own rather than OpenSSL's socket BIO because of the head bytes, and so that a failed
// syscall's errno is kept for Failure() (OpenSSL's own calls may overwrite errno in between).
struct StreamBio {
  static BIO_METHOD* Method() {
    static BIO_METHOD* method = nullptr;
    static std::once_flag once;
    std::call_once(once, [] {
      method = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "enclaver client stream");
      BIO_meth_set_read_ex(method, Read);
      BIO_meth_set_write_ex(method, Write);
      BIO_meth_set_ctrl(method, Ctrl);
    });
    return method;
  }

  static TlsClientStream* StreamOf(BIO* bio) { return static_cast<TlsClientStream*>(BIO_get_data(bio)); }

  static int Read(BIO* bio, char* out, size_t len, size_t* done) {
    TlsClientStream* s = StreamOf(bio);
    BIO_clear_retry_flags(bio);
    if (s->head_offset_ < s->head_.size()) {
      size_t n = std::min(len, s->head_.size() - s->head_offset_);
      std::memcpy(out, s->head_.data() + s->head_offset_, n);
      s->head_offset_ += n;
      if (s->head_offset_ == s->head_.size()) std::string().swap(s->head_);
      *done = n;
      return 1;
    }
    for (;;) {
      ssize_t n = read(s->fd_, out, len);
      if (n > 0) {
        *done = static_cast<size_t>(n);
        return 1;
      }
      if (n == 0) {
        // End of stream: BIO_eof says so, which is what SSL_OP_IGNORE_UNEXPECTED_EOF looks at.
        BIO_set_flags(bio, BIO_FLAGS_IN_EOF);
        return 0;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) BIO_set_retry_read(bio);
      else s->last_errno_ = errno;
      return 0;
    }
  }

  static int Write(BIO* bio, const char* in, size_t len, size_t* done) {
    TlsClientStream* s = StreamOf(bio);
    BIO_clear_retry_flags(bio);
    for (;;) {
      ssize_t n = write(s->fd_, in, len);
      if (n >= 0) {
        *done = static_cast<size_t>(n);
        return 1;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) BIO_set_retry_write(bio);
      else s->last_errno_ = errno;
      return 0;
    }
  }

  static long Ctrl(BIO* bio, int cmd, long, void*) {
    switch (cmd) {
      case BIO_CTRL_FLUSH: return 1;  // nothing is buffered here
      case BIO_CTRL_EOF: return BIO_test_flags(bio, BIO_FLAGS_IN_EOF) != 0;
      default: return 0;
    }
  }
};

std::shared_ptr<TlsContext> TlsContext::Create(Settings& settings, std::string* error) {
  ERR_clear_error();
  SSL_CTX* raw = SSL_CTX_new(TLS_server_method());
  if (raw == nullptr) {
    *error = OpenSslReason("cannot create a TLS context");
    return nullptr;
  }
  std::shared_ptr<TlsContext> context(new TlsContext(raw));
  // As terminateTls's contexts: TLS 1.2 at least; no renegotiation (Node refuses a client's
  // renegotiation too); FIN without close_notify is an ordinary end.
  SSL_CTX_set_min_proto_version(raw, TLS1_2_VERSION);
  SSL_CTX_set_options(raw, SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_COMPRESSION);
  // Partial writes: a full socket returns what went out; the caller keeps the rest in place.
  // Buffers are kept between calls (no SSL_MODE_RELEASE_BUFFERS): releasing them cost ~30% more
  // CPU per GB in bench:tls, for ~34 KiB saved per idle connection.
  SSL_CTX_set_mode(raw, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (!settings.cipher_list.empty() && SSL_CTX_set_cipher_list(raw, settings.cipher_list.c_str()) != 1) {
    *error = "TLS ciphers not accepted: " + OpenSslReason("no usable cipher");
    return nullptr;
  }
  if (!settings.cipher_suites.empty() && SSL_CTX_set_ciphersuites(raw, settings.cipher_suites.c_str()) != 1) {
    *error = "TLS 1.3 cipher suites not accepted: " + OpenSslReason("no usable suite");
    return nullptr;
  }

  BioPtr certs(BIO_new_mem_buf(settings.certificate_pem.data(), static_cast<int>(settings.certificate_pem.size())));
  X509* leaf = certs ? PEM_read_bio_X509_AUX(certs.get(), nullptr, nullptr, nullptr) : nullptr;
  if (leaf == nullptr) {
    *error = "TLS certificate: " + OpenSslReason("no PEM certificate");
    return nullptr;
  }
  int used = SSL_CTX_use_certificate(raw, leaf);
  X509_free(leaf);
  if (used != 1) {
    *error = "TLS certificate: " + OpenSslReason("not usable");
    return nullptr;
  }
  while (X509* extra = PEM_read_bio_X509(certs.get(), nullptr, nullptr, nullptr)) {
    if (SSL_CTX_add0_chain_cert(raw, extra) != 1) {  // owned by the context on success
      X509_free(extra);
      *error = "TLS certificate chain: " + OpenSslReason("not usable");
      return nullptr;
    }
  }
  ERR_clear_error();  // the loop ends on "no start line"

  BioPtr key_bio(BIO_new_mem_buf(settings.key_pem.data(), static_cast<int>(settings.key_pem.size())));
  EVP_PKEY* key = key_bio ? PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr) : nullptr;
  key_bio.reset();
  OPENSSL_cleanse(settings.key_pem.data(), settings.key_pem.size());
  settings.key_pem.clear();
  if (key == nullptr) {
    *error = "TLS private key: " + OpenSslReason("no PEM private key");
    return nullptr;
  }
  used = SSL_CTX_use_PrivateKey(raw, key);
  EVP_PKEY_free(key);  // the context holds its own reference; freed (and wiped) with the context
  if (used != 1 || SSL_CTX_check_private_key(raw) != 1) {
    *error = "TLS private key: " + OpenSslReason("does not match the certificate");
    return nullptr;
  }
  return context;
}

TlsContext::~TlsContext() {
  SSL_CTX_free(ctx_);
}

TlsClientStream::TlsClientStream(int fd, std::shared_ptr<TlsContext> context, std::string head)
    : fd_(fd), context_(std::move(context)), head_(std::move(head)) {
  ssl_ = SSL_new(context_->get());
  BIO* bio = ssl_ ? BIO_new(StreamBio::Method()) : nullptr;
  if (bio == nullptr) return;  // Handshake() reports it
  BIO_set_data(bio, this);
  BIO_set_init(bio, 1);
  SSL_set_bio(ssl_, bio, bio);  // one BIO both ways, owned by the SSL
  SSL_set_accept_state(ssl_);
}

TlsClientStream::~TlsClientStream() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (fd_ >= 0) close(fd_);
}

ClientStream::Result TlsClientStream::Failure(int rc) {
  int err = SSL_get_error(ssl_, rc);
  switch (err) {
    case SSL_ERROR_WANT_READ:
      wait_events_ = EPOLLIN;
      return Result{Io::kWouldBlock, 0, 0};
    case SSL_ERROR_WANT_WRITE:
      wait_events_ = EPOLLOUT;
      return Result{Io::kWouldBlock, 0, 0};
    case SSL_ERROR_ZERO_RETURN:
      ERR_clear_error();
      return Result{Io::kEof, 0, 0};
    case SSL_ERROR_SYSCALL:
      if (last_errno_ != 0) {
        failure_ = std::strerror(last_errno_);
        ERR_clear_error();
        return Result{Io::kError, 0, last_errno_};
      }
      [[fallthrough]];
    default:
      failure_ = OpenSslReason("TLS protocol error");
      return Result{Io::kError, 0, EPROTO};
  }
}

ClientStream::Result TlsClientStream::Handshake() {
  if (ssl_ == nullptr || SSL_get_rbio(ssl_) == nullptr) {
    failure_ = OpenSslReason("cannot allocate the TLS connection");
    return Result{Io::kError, 0, ENOMEM};
  }
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) return Result{Io::kOk, 0, 0};
  Result r = Failure(rc);
  if (r.io == Io::kEof) {
    // Node's words for the same event on the JS path.
    failure_ = "Client network socket disconnected before secure TLS connection was established";
    r = Result{Io::kError, 0, ECONNRESET};
  }
  return r;
}

ClientStream::Result TlsClientStream::Read(char* buf, size_t len) {
  size_t n = 0;
  ERR_clear_error();
  int rc = SSL_read_ex(ssl_, buf, len, &n);
  if (rc == 1) return Result{Io::kOk, n, 0};
  return Failure(rc);
}

ClientStream::Result TlsClientStream::Write(const char* buf, size_t len) {
  size_t n = 0;
  ERR_clear_error();
  int rc = SSL_write_ex(ssl_, buf, len, &n);
  if (rc == 1) return Result{Io::kOk, n, 0};
  return Failure(rc);
}

ClientStream::Result TlsClientStream::ShutdownWrite() {
  if (!shut_) {
    ERR_clear_error();
    int rc = SSL_shutdown(ssl_);  // 0: close_notify sent, the peer's not yet read; reads go on
    if (rc < 0) return Failure(rc);
    shut_ = true;
  }
  if (shutdown(fd_, SHUT_WR) < 0 && errno != ENOTCONN) return Result{Io::kError, 0, errno};
  return Result{Io::kOk, 0, 0};
}

bool TlsClientStream::HasBuffered() const {
  return SSL_has_pending(ssl_) == 1;
}

}  // namespace enclaver
