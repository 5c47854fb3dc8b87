// Host and path routing for the native L7 engine: the subset of minimatch globs this matcher
// reproduces exactly, and the route table of proxy-inner/http-ingress/routes.ts over it.
//
// The subset (GlobSubsetProblem says why a pattern falls outside it): literal characters from
// [A-Za-z0-9._~-] (hosts: lower-case [a-z0-9.-]), '/', '*' and '?'; paths may use '**' as a whole
// segment (globstar). No braces, classes, extglobs, negation, escapes, comments, no empty, "." or
// ".." segment. A listener whose routes leave the subset stays on the JS path.
//
// Semantics, as minimatch 11 with the options routes.ts uses ({dot: true} for paths; {nocase,
// dot, noglobstar} for lower-cased hosts), proven equal by test/unit/http-ingress/glob.test.ts:
//  - a subject is split on '/'; pattern and subject segments are compared one to one;
//  - in a segment '*' matches any run, '?' one character; a segment of stars only needs a
//    non-empty subject segment; a segment with a wildcard never matches "." or "..";
//  - '**' matches zero or more whole segments (none of them "." or ".."); at the end of the
//    pattern it takes everything left;
//  - a subject with one more, empty, segment (a trailing '/') still matches.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace enclaver {

class Glob {
 public:
  // `host`: the host flavour (noglobstar, one segment in practice).
  Glob(std::string_view pattern, bool host);
  bool Match(std::string_view subject) const;

 private:
  static constexpr const char* kGlobstar = "\x01**";
  bool MatchFrom(const std::vector<std::string_view>& file, size_t fi, size_t pi) const;
  std::vector<std::string> segments_;
};

// Empty when `pattern` is inside the subset, else a sentence saying why not.
std::string GlobSubsetProblem(std::string_view pattern, bool host);

struct NativeRoute {
  std::string name;
  int cluster = -1;  // index into the listener's native endpoints
  std::vector<Glob> hosts;  // empty: any host
  std::vector<Glob> paths;  // empty: any path
};

struct RouteHit {
  const std::string* name = nullptr;  // null: no route (the JS path answers 404)
  int cluster = -1;
};

class NativeRouteTable {
 public:
  std::vector<NativeRoute> routes;
  bool has_default = false;
  std::string default_name = "default";
  int default_cluster = -1;

  // `host_name`: lower-case, port removed (hostWithoutPort); `path`: without the query.
  RouteHit Match(std::string_view host_name, std::string_view path) const;
};

}  // namespace enclaver
