# Sourced by the launch scripts: their usage, one-line errors and shell quoting, written once.
# The sourcing script sets `prog` first.

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() {
  echo "$prog: error: $*" >&2
  exit 2
}

# One word as it would be typed: bare when safe, else in double quotes when nothing in it is
# special there, else in single quotes.
special_in_double_quotes='[$`"\!]'
quote() {
  if [[ $1 =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
    printf '%s' "$1"
  elif [[ ! $1 =~ $special_in_double_quotes ]]; then
    printf '"%s"' "$1"
  else
    printf "'%s'" "${1//\'/\'\\\'\'}"
  fi
}
quote_words() {
  local word out=""
  for word in "$@"; do out+="${out:+ }$(quote "$word")"; done
  printf '%s' "$out"
}
