"""Condensation: keep the speech that carries clear, reliable paralinguistic information.

- `rules`: the paper's sentiment mapping, emotion–valence consistency and occurrence filter (pure);
- `scorers`, `selection`: optional selection scores, quality gates, caps, balance and budget;
- `condense`: the `condense` stage (Segment → Segment); `clips`: the `clips` stage (Segment → Clip);
- `calibrate`: grid search of the thresholds on a human-labelled dev set; `calibration_labels`: that
  set's labels mapped onto the emotion vocabulary; `calibrate_run`: a run in, a report and heat maps out.
"""
