// Strict, bounded HTTP/1.1 parsing for the native L7 engine: a request head from the client, a
// response head from the app, and the app's chunked body framing.
//
// The request parser only *recognises*. It accepts a deliberately narrow subset of HTTP/1.1 —
// what ordinary clients send — and everything else (a smuggling shape, an oversized head, an
// Upgrade, an Expect, HTTP/1.0, an odd target) is kHandBack: the connection goes to the
// JavaScript path with every byte read, where Node's llhttp (lenient flags off) decides and
// answers exactly as it always has. So the native path can never accept what the JS path
// refuses, and every refusal has one source.
//
// Invariants:
//  - a kComplete result describes only bytes inside [data, data + head_length);
//  - every request field line was `token ":" OWS visible-or-SP/HTAB* OWS CRLF`; no CTL, no byte
//    >= 0x80, no bare CR or LF, no obs-fold anywhere in an accepted head;
//  - an accepted request has exactly one Host (hostname[:port] characters only), either at most
//    one Content-Length (1-15 digits) or one Transfer-Encoding that is exactly `chunked` (never
//    both), and no Expect or Upgrade;
//  - the response parser refuses (kBad) what undici refuses: CL with TE, differing CLs, a TE
//    other than chunked, a malformed status line or field line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace enclaver {

struct HttpField {
  std::string_view name;
  std::string_view value;  // OWS trimmed
};

struct RequestHead {
  size_t head_length = 0;  // request line + fields + the empty line
  std::string_view method;
  std::string_view target;  // origin-form: starts with '/'
  std::string_view path;  // target without the query
  std::string_view host;  // the Host field's value as sent
  std::string_view host_name;  // lower-case characters only in an accepted head, port removed
  int64_t content_length = 0;
  bool close = false;  // Connection: close
  bool head_method = false;
  bool chunked = false;  // Transfer-Encoding: chunked
  std::vector<HttpField> fields;
};

enum class HeadParse { kIncomplete, kComplete, kHandBack };

// `max_bytes`/`max_fields`: the listener's limits; beyond them the JS path answers 431.
HeadParse ParseRequestHead(std::string_view data, size_t max_bytes, size_t max_fields, RequestHead* out);

enum class BodyFraming { kNone, kLength, kChunked, kUntilClose };

struct ResponseHead {
  size_t head_length = 0;
  int status = 0;
  bool http11 = false;
  bool close = false;  // Connection: close from the app, or HTTP/1.0 without keep-alive
  BodyFraming framing = BodyFraming::kUntilClose;
  int64_t content_length = 0;
  std::vector<HttpField> fields;
};

enum class ResponseParse { kIncomplete, kComplete, kBad };

// `head_request`: the request was HEAD (no body whatever the fields say).
ResponseParse ParseResponseHead(std::string_view data, size_t max_bytes, bool head_request, ResponseHead* out);

// Validates chunked framing while it decodes: data bytes are appended re-framed (one chunk per
// call's worth of data) to `out`, the terminating `0\r\n\r\n` once the last chunk and its
// trailer section (dropped, as the JS path drops trailers) have been read.
class ChunkedDecoder {
 public:
  enum class Result { kNeedMore, kDone, kBad };
  // Consumes from `in` (advancing *used); appends the client-side encoding to `out`.
  Result Feed(std::string_view in, size_t* used, std::string* out);

 private:
  enum class State { kSize, kSizeExt, kSizeLf, kData, kDataCr, kDataLf, kTrailerStart, kTrailerLine, kTrailerLf, kDone };
  State state_ = State::kSize;
  uint64_t remaining_ = 0;
  int size_digits_ = 0;
  size_t line_bytes_ = 0;
};

// Lower-case ASCII copy.
std::string Lower(std::string_view s);
// Whether `field` (lower-cased) is hop-by-hop (RFC 9110 §7.6.1), as HOP_BY_HOP in headers.ts.
bool IsHopByHop(std::string_view lower_name);
// The comma-separated tokens of Connection fields, lower-cased (connectionTokens in headers.ts).
void ConnectionTokens(std::string_view value, std::vector<std::string>* out);

}  // namespace enclaver
