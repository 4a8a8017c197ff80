# Sourced by the stage scripts: the checkpoint that decodes with model NAME.
# model_checkpoint NAME: WORK/models/NAME/checkpoint_avg.pt when the training averaged its last
# states (AVERAGE_LAST), else its checkpoint_best.pt.
model_checkpoint() {
  local dir="$WORK/models/$1"
  if [ -f "$dir/checkpoint_avg.pt" ]; then echo "$dir/checkpoint_avg.pt"; else echo "$dir/checkpoint_best.pt"; fi
}
