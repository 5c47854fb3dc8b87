#include "http/http_parse.h"

#include <algorithm>
#include <cstring>

namespace enclaver {

namespace {

// RFC 9110 §5.6.2 tchar.
bool IsTchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return std::strchr("!#$%&'*+-.^_`|~", c) != nullptr && c != 0;
}

// A field value byte the native path accepts: visible ASCII, SP, HTAB (no obs-text, no CTL).
bool IsValueByte(unsigned char c) { return c == '\t' || (c >= 0x20 && c < 0x7f); }

bool EqualsNoCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); i++) {
    unsigned char x = static_cast<unsigned char>(a[i]), y = static_cast<unsigned char>(b[i]);
    if (x >= 'A' && x <= 'Z') x |= 0x20;
    if (y >= 'A' && y <= 'Z') y |= 0x20;
    if (x != y) return false;
  }
  return true;
}

std::string_view TrimOws(std::string_view v) {
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return v;
}

bool ParseDigits(std::string_view v, int64_t* out) {
  if (v.empty() || v.size() > 15) return false;
  int64_t n = 0;
  for (char c : v) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + (c - '0');
  }
  *out = n;
  return true;
}

// Field lines from `pos` up to and including the empty line; false on anything malformed.
// Sets *end to the offset after the empty line, or leaves it 0 when the head is incomplete.
bool ParseFields(std::string_view data, size_t pos, size_t max_fields, std::vector<HttpField>* fields, size_t* end, bool* too_many) {
  *end = 0;
  for (;;) {
    size_t eol = data.find('\n', pos);
    if (eol == std::string_view::npos) {
      // A bare CR or a CTL already in the partial line is refused now, not after more bytes.
      return true;
    }
    if (eol == pos || data[eol - 1] != '\r') return false;  // bare LF
    std::string_view line = data.substr(pos, eol - 1 - pos);
    pos = eol + 1;
    if (line.empty()) {
      *end = pos;
      return true;
    }
    if (line.front() == ' ' || line.front() == '\t') return false;  // obs-fold
    size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) return false;
    std::string_view name = line.substr(0, colon);
    for (char c : name) {
      if (!IsTchar(static_cast<unsigned char>(c))) return false;  // also "name :" (SP before colon)
    }
    std::string_view value = line.substr(colon + 1);
    for (char c : value) {
      if (!IsValueByte(static_cast<unsigned char>(c))) return false;
    }
    if (fields->size() >= max_fields) {
      *too_many = true;
      return false;
    }
    fields->push_back(HttpField{name, TrimOws(value)});
  }
}

bool HostCharsOk(std::string_view host, std::string_view* name) {
  // hostname[:port], letters (any case), digits, '.', '-'; no IPv6 literal, no userinfo.
  size_t colon = host.find(':');
  std::string_view h = colon == std::string_view::npos ? host : host.substr(0, colon);
  if (h.empty()) return false;
  for (char c : h) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok) return false;
  }
  if (colon != std::string_view::npos) {
    std::string_view port = host.substr(colon + 1);
    int64_t n;
    if (!ParseDigits(port, &n) || port.size() > 5) return false;
  }
  *name = h;
  return true;
}

// A path the route matcher can take as it is: no empty, "." or ".." segment (minimatch treats
// those specially), no backslash or fragment.
bool PathOk(std::string_view path) {
  if (path.empty() || path.front() != '/') return false;
  size_t start = 1;
  for (;;) {
    size_t slash = path.find('/', start);
    std::string_view seg = path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start);
    if (seg == "." || seg == "..") return false;
    if (seg.empty() && slash != std::string_view::npos) return false;  // "//"
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  for (char c : path) {
    if (c == '\\' || c == '#') return false;
  }
  return true;
}

}  // namespace

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c | 0x20);
  }
  return out;
}

bool IsHopByHop(std::string_view n) {
  static const char* const kHop[] = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
                                      "proxy-authenticate", "proxy-authorization"};
  for (const char* h : kHop) {
    if (n == h) return true;
  }
  return false;
}

void ConnectionTokens(std::string_view value, std::vector<std::string>* out) {
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    std::string_view t = TrimOws(value.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos));
    if (!t.empty()) out->push_back(Lower(t));
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
}

HeadParse ParseRequestHead(std::string_view data, size_t max_bytes, size_t max_fields, RequestHead* out) {
  // Only the bytes a head may occupy are looked at; a longer head is the JS path's 431.
  std::string_view window = data.substr(0, std::min(data.size(), max_bytes));
  size_t eol = window.find('\n');
  if (eol == std::string_view::npos) {
    if (data.size() >= max_bytes) return HeadParse::kHandBack;
    for (size_t i = 0; i < window.size(); i++) {
      // A request line cannot hold these; say so now rather than wait for the deadline. A CR
      // last may be the start of the CRLF.
      unsigned char c = static_cast<unsigned char>(window[i]);
      if (c == '\r' && i + 1 == window.size()) break;
      if (c < 0x20 || c >= 0x7f) return HeadParse::kHandBack;
    }
    return HeadParse::kIncomplete;
  }
  if (eol == 0 || window[eol - 1] != '\r') return HeadParse::kHandBack;
  std::string_view line = window.substr(0, eol - 1);
  size_t sp1 = line.find(' ');
  if (sp1 == std::string_view::npos || sp1 == 0) return HeadParse::kHandBack;
  size_t sp2 = line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return HeadParse::kHandBack;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string_view version = line.substr(sp2 + 1);
  if (version != "HTTP/1.1") return HeadParse::kHandBack;
  for (char c : method) {
    if (!IsTchar(static_cast<unsigned char>(c))) return HeadParse::kHandBack;
  }
  if (method == "CONNECT") return HeadParse::kHandBack;
  if (target.empty() || target.front() != '/') return HeadParse::kHandBack;
  for (char c : target) {
    unsigned char u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f) return HeadParse::kHandBack;
  }
  out->fields.clear();
  size_t end = 0;
  bool too_many = false;
  if (!ParseFields(window, eol + 1, max_fields, &out->fields, &end, &too_many)) return HeadParse::kHandBack;
  if (end == 0) return data.size() >= max_bytes ? HeadParse::kHandBack : HeadParse::kIncomplete;

  out->head_length = end;
  out->method = method;
  out->target = target;
  size_t q = target.find('?');
  out->path = q == std::string_view::npos ? target : target.substr(0, q);
  if (!PathOk(out->path)) return HeadParse::kHandBack;
  out->head_method = method == "HEAD";
  out->content_length = 0;
  out->close = false;
  out->chunked = false;
  bool have_host = false, have_length = false;
  for (const HttpField& f : out->fields) {
    if (EqualsNoCase(f.name, "host")) {
      if (have_host || !HostCharsOk(f.value, &out->host_name)) return HeadParse::kHandBack;
      have_host = true;
      out->host = f.value;
    } else if (EqualsNoCase(f.name, "content-length")) {
      if (have_length || !ParseDigits(f.value, &out->content_length)) return HeadParse::kHandBack;
      have_length = true;
    } else if (EqualsNoCase(f.name, "transfer-encoding")) {
      // One field, exactly "chunked": lists, other codings and repeats are the JS path's to judge.
      if (out->chunked || !EqualsNoCase(f.value, "chunked")) return HeadParse::kHandBack;
      out->chunked = true;
    } else if (EqualsNoCase(f.name, "expect") || EqualsNoCase(f.name, "upgrade")) {
      return HeadParse::kHandBack;
    } else if (EqualsNoCase(f.name, "connection")) {
      std::vector<std::string> tokens;
      ConnectionTokens(f.value, &tokens);
      for (const std::string& t : tokens) {
        if (t == "close") out->close = true;
        else if (t == "upgrade") return HeadParse::kHandBack;
      }
    }
  }
  if (!have_host || (out->chunked && have_length)) return HeadParse::kHandBack;
  return HeadParse::kComplete;
}

ResponseParse ParseResponseHead(std::string_view data, size_t max_bytes, bool head_request, ResponseHead* out) {
  std::string_view window = data.substr(0, std::min(data.size(), max_bytes));
  size_t eol = window.find('\n');
  if (eol == std::string_view::npos) return data.size() >= max_bytes ? ResponseParse::kBad : ResponseParse::kIncomplete;
  if (eol == 0 || window[eol - 1] != '\r') return ResponseParse::kBad;
  std::string_view line = window.substr(0, eol - 1);
  // "HTTP/1.x NNN[ reason]"
  if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '1' && line[7] != '0') || line[8] != ' ') return ResponseParse::kBad;
  if (line.size() > 12 && line[12] != ' ') return ResponseParse::kBad;
  int status = 0;
  for (size_t i = 9; i < 12; i++) {
    if (line[i] < '0' || line[i] > '9') return ResponseParse::kBad;
    status = status * 10 + (line[i] - '0');
  }
  if (status < 100) return ResponseParse::kBad;
  for (char c : line.substr(std::min<size_t>(line.size(), 13))) {
    if (!IsValueByte(static_cast<unsigned char>(c)) && static_cast<unsigned char>(c) < 0x80) return ResponseParse::kBad;
  }
  out->fields.clear();
  size_t end = 0;
  bool too_many = false;
  // Field values from the app may carry obs-text (latin1); ParseFields refuses it, and so the
  // response becomes a 502 here where undici would pass it. Apps rarely send it.
  if (!ParseFields(window, eol + 1, 1000, &out->fields, &end, &too_many)) return ResponseParse::kBad;
  if (end == 0) return data.size() >= max_bytes ? ResponseParse::kBad : ResponseParse::kIncomplete;
  out->head_length = end;
  out->status = status;
  out->http11 = line[7] == '1';
  bool keep_alive = out->http11;
  bool chunked = false, have_te = false, have_length = false;
  int64_t length = 0;
  for (const HttpField& f : out->fields) {
    if (EqualsNoCase(f.name, "content-length")) {
      int64_t n;
      if (!ParseDigits(f.value, &n) || (have_length && n != length)) return ResponseParse::kBad;
      have_length = true;
      length = n;
    } else if (EqualsNoCase(f.name, "transfer-encoding")) {
      if (have_te || !EqualsNoCase(f.value, "chunked")) return ResponseParse::kBad;
      have_te = chunked = true;
    } else if (EqualsNoCase(f.name, "connection")) {
      std::vector<std::string> tokens;
      ConnectionTokens(f.value, &tokens);
      for (const std::string& t : tokens) {
        if (t == "close") keep_alive = false;
        else if (t == "keep-alive" && !out->http11) keep_alive = true;
      }
    }
  }
  if (have_te && have_length) return ResponseParse::kBad;
  out->close = !keep_alive;
  out->content_length = length;
  if (head_request || status == 204 || status == 304 || (status >= 100 && status < 200)) out->framing = BodyFraming::kNone;
  else if (chunked) out->framing = BodyFraming::kChunked;
  else if (have_length) out->framing = length == 0 ? BodyFraming::kNone : BodyFraming::kLength;
  else out->framing = BodyFraming::kUntilClose;
  return ResponseParse::kComplete;
}

namespace {

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

void AppendChunk(std::string* out, const char* data, size_t n) {
  char size[24];
  int len = snprintf(size, sizeof(size), "%zx\r\n", n);
  out->append(size, static_cast<size_t>(len));
  out->append(data, n);
  out->append("\r\n", 2);
}

// Longest chunk-size line (with extensions) or trailer line accepted.
constexpr size_t kMaxChunkLine = 4096;

}  // namespace

ChunkedDecoder::Result ChunkedDecoder::Feed(std::string_view in, size_t* used, std::string* out) {
  size_t i = 0;
  while (i < in.size()) {
    char c = in[i];
    switch (state_) {
      case State::kSize: {
        int h = HexValue(c);
        if (h >= 0) {
          if (++size_digits_ > 15) return Result::kBad;
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(h);
          i++;
          break;
        }
        if (size_digits_ == 0) return Result::kBad;
        if (c == ';') state_ = State::kSizeExt, line_bytes_ = 0, i++;
        else if (c == '\r') state_ = State::kSizeLf, i++;
        else return Result::kBad;  // no whitespace before the CRLF or the extension
        break;
      }
      case State::kSizeExt:
        if (c == '\r') state_ = State::kSizeLf;
        else if (!IsValueByte(static_cast<unsigned char>(c)) || ++line_bytes_ > kMaxChunkLine) return Result::kBad;
        i++;
        break;
      case State::kSizeLf:
        if (c != '\n') return Result::kBad;
        i++;
        size_digits_ = 0;
        state_ = remaining_ == 0 ? State::kTrailerStart : State::kData;
        break;
      case State::kData: {
        size_t n = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
        AppendChunk(out, in.data() + i, n);
        i += n;
        remaining_ -= n;
        if (remaining_ == 0) state_ = State::kDataCr;
        break;
      }
      case State::kDataCr:
        if (c != '\r') return Result::kBad;
        state_ = State::kDataLf, i++;
        break;
      case State::kDataLf:
        if (c != '\n') return Result::kBad;
        state_ = State::kSize, i++;
        break;
      case State::kTrailerStart:
        if (c == '\r') {
          state_ = State::kTrailerLf, i++;
          line_bytes_ = 0;
          break;
        }
        state_ = State::kTrailerLine, line_bytes_ = 0;
        break;
      case State::kTrailerLine:
        if (c == '\r') {
          // The end of one trailer field line; a CRLF must follow, then the next line or the end.
          if (i + 1 >= in.size()) {
            *used = i;
            return Result::kNeedMore;
          }
          if (in[i + 1] != '\n') return Result::kBad;
          i += 2;
          state_ = State::kTrailerStart;
          break;
        }
        if (!IsValueByte(static_cast<unsigned char>(c)) || ++line_bytes_ > kMaxChunkLine) return Result::kBad;
        i++;
        break;
      case State::kTrailerLf:
        if (c != '\n') return Result::kBad;
        i++;
        state_ = State::kDone;
        out->append("0\r\n\r\n", 5);
        *used = i;
        return Result::kDone;
      case State::kDone:
        *used = i;
        return Result::kDone;
    }
  }
  *used = i;
  return state_ == State::kDone ? Result::kDone : Result::kNeedMore;
}

}  // namespace enclaver
