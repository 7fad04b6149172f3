#!/bin/sh
# Used by the Dockerfile's dependency layer, which sees only Cargo.toml and Cargo.lock: cargo
# refuses a manifest whose declared targets have no source file (`[[bench]] name = "x"` needs
# benches/x.rs even for `cargo build`). `create` writes an empty stub for every target that the
# manifest declares, or that cargo would look for, and lists them in /tmp/cargo-stubs;
# `remove` deletes them again. POSIX sh and awk only (the builder image has mawk).
set -eu
list=/tmp/cargo-stubs

targets() {
  awk '
    function value(line) { sub(/^[^=]*=[ \t]*/, "", line); gsub(/["\047]/, "", line); sub(/[ \t]*(#.*)?$/, "", line); return line }
    function flush() {
      if (kind == "") return
      if (path != "") print path
      else if (kind == "lib") print "src/lib.rs"
      else if (kind == "bin") print (name == package ? "src/main.rs" : "src/bin/" name ".rs")
      else if (kind == "bench") print "benches/" name ".rs"
      else if (kind == "test") print "tests/" name ".rs"
      else if (kind == "example") print "examples/" name ".rs"
      kind = ""; name = ""; path = ""
    }
    /^[ \t]*\[/ {
      flush(); section = $0; gsub(/[][ \t]/, "", section)
      if (section ~ /^(lib|bin|bench|test|example)$/) kind = section
      next
    }
    section == "package" && /^[ \t]*name[ \t]*=/ { package = value($0) }
    kind != "" && /^[ \t]*name[ \t]*=/ { name = value($0) }
    kind != "" && /^[ \t]*path[ \t]*=/ { path = value($0) }
    END { flush(); print "src/main.rs" }
  ' Cargo.toml
}

case "${1:-}" in
create)
  : >"$list"
  for f in $(targets); do
    [ -e "$f" ] && continue
    mkdir -p "$(dirname "$f")"
    case "$f" in */lib.rs) : >"$f" ;; *) echo 'fn main() {}' >"$f" ;; esac
    echo "$f" >>"$list"
  done
  ;;
remove) xargs rm -f <"$list" ;;
*)
  echo "usage: $0 create|remove (in the directory of Cargo.toml)" >&2
  exit 2
  ;;
esac
