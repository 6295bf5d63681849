# shellcheck shell=bash
# Sourced by the launch scripts: their usage, one-line errors, the option handling they share and
# shell quoting, written once. The sourcing script sets `prog` first.

usage() { awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; }
die() {
  echo "${prog:?}: error: $*" >&2
  exit 2
}

# The last arm of a script's option loop: -h/--help, else an option the script does not know.
help_or_unknown_option() {
  case $1 in
    -h | --help)
      usage
      exit 0
      ;;
    *) die "unknown option $1 (options of bert-jax go after its command:" \
      "pretrain --config=...; see --help)" ;;
  esac
}

# --dry-run counts anywhere, even after the bert-jax command (which has no option of that name):
# a dry run wanted must never run. Sets dry_run=1 when it is among the arguments, and `words` to
# the arguments without it.
# shellcheck disable=SC2034  # both are the sourcing script's
take_dry_run() {
  local word
  words=()
  for word in "$@"; do
    if [[ $word == --dry-run ]]; then dry_run=1; else words+=("$word"); fi
  done
}

# Commands whose processes form one run over all machines (they join through jax.distributed);
# the others write their outputs once, so run on one machine.
# shellcheck disable=SC2034  # read by the sourcing scripts
spanning_commands=" pretrain finetune evaluate "

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
