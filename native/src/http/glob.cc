#include "http/glob.h"

namespace enclaver {

namespace {

std::vector<std::string_view> Split(std::string_view s) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (;;) {
    size_t slash = s.find('/', start);
    if (slash == std::string_view::npos) {
      out.push_back(s.substr(start));
      return out;
    }
    out.push_back(s.substr(start, slash - start));
    start = slash + 1;
  }
}

bool StarsOnly(std::string_view p) {
  for (char c : p) {
    if (c != '*') return false;
  }
  return !p.empty();
}

// '*' any run, '?' one character, the rest literal (iterative, with one backtrack point).
bool WildMatch(std::string_view p, std::string_view s) {
  size_t pi = 0, si = 0, star = std::string_view::npos, mark = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      mark = si;
    } else if (pi < p.size() && (p[pi] == '?' || p[pi] == s[si])) {
      pi++, si++;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      si = ++mark;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') pi++;
  return pi == p.size();
}

bool SegmentMatch(std::string_view p, std::string_view f) {
  if (p.find_first_of("*?") == std::string_view::npos) return p == f;
  if (f == "." || f == "..") return false;  // a wildcard never matches these, even with {dot: true}
  if (StarsOnly(p)) return !f.empty();
  return WildMatch(p, f);
}

bool IsDotSegment(std::string_view f) { return f == "." || f == ".."; }

}  // namespace

Glob::Glob(std::string_view pattern, bool host) {
  for (std::string_view seg : Split(pattern)) segments_.emplace_back(!host && seg == "**" ? kGlobstar : std::string(seg));
}

bool Glob::Match(std::string_view subject) const { return MatchFrom(Split(subject), 0, 0); }

bool Glob::MatchFrom(const std::vector<std::string_view>& file, size_t fi, size_t pi) const {
  const size_t fl = file.size(), pl = segments_.size();
  for (; fi < fl && pi < pl; fi++, pi++) {
    if (segments_[pi] == kGlobstar) {
      if (pi + 1 == pl) {
        for (; fi < fl; fi++) {
          if (IsDotSegment(file[fi])) return false;
        }
        return true;
      }
      for (size_t fr = fi; fr < fl; fr++) {
        if (MatchFrom(file, fr, pi + 1)) return true;
        if (IsDotSegment(file[fr])) return false;
      }
      return false;
    }
    if (!SegmentMatch(segments_[pi], file[fi])) return false;
  }
  if (fi == fl && pi == pl) return true;
  if (fi == fl) return false;
  return fi == fl - 1 && file[fi].empty();
}

std::string GlobSubsetProblem(std::string_view pattern, bool host) {
  if (pattern.empty()) return "an empty pattern";
  for (char c : pattern) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '*' || c == '?';
    if (!host) ok = ok || (c >= 'A' && c <= 'Z') || c == '_' || c == '~' || c == '/';
    if (!ok) return std::string("the character '") + c + "'";
  }
  std::vector<std::string_view> segments = Split(pattern);
  for (size_t i = 0; i < segments.size(); i++) {
    std::string_view s = segments[i];
    if (s.empty() && i != 0) return "an empty segment";
    if (s == "." || s == "..") return "a '.' or '..' segment";
    if (s.find("**") != std::string_view::npos && s != "**" && !host) return "'**' inside a segment";
  }
  if (!host && pattern.find("**/**") != std::string_view::npos) return "adjacent '**' segments";
  return "";
}

RouteHit NativeRouteTable::Match(std::string_view host_name, std::string_view path) const {
  for (const NativeRoute& r : routes) {
    bool host_ok = r.hosts.empty();
    for (const Glob& g : r.hosts) {
      if (g.Match(host_name)) {
        host_ok = true;
        break;
      }
    }
    if (!host_ok) continue;
    bool path_ok = r.paths.empty();
    for (const Glob& g : r.paths) {
      if (g.Match(path)) {
        path_ok = true;
        break;
      }
    }
    if (!path_ok) continue;
    return RouteHit{&r.name, r.cluster};
  }
  if (has_default) return RouteHit{&default_name, default_cluster};
  return RouteHit{};
}

}  // namespace enclaver
