# Sourced by transfer_experiment.sh (the pipeline's stages record provenance.py stamps instead):
# shellcheck shell=bash

# finished MARK SETTING...: MARK (a model's DONE) records the settings it was trained with,
# one a line. Returns 0 when MARK exists with these settings (in any order) or is empty (a
# model finished before its mark had settings: taken as it is), 1 when there is no MARK, and
# 2 when MARK has other settings; then $changed reads "'WAS', not 'NOW'" (only those that differ).
finished() {
  local mark=$1 want was now; shift
  [ -f "$mark" ] || return 1
  [ -s "$mark" ] || return 0
  want=$(printf '%s\n' "$@" | sort)
  was=$(comm -23 <(sort "$mark") <(printf '%s\n' "$want") | paste -sd' ')
  now=$(comm -13 <(sort "$mark") <(printf '%s\n' "$want") | paste -sd' ')
  changed="'$was', not '$now'"
  [ -z "$was$now" ] || return 2
}
