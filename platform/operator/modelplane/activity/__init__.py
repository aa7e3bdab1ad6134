"""The activity sidecar of an idle-watched notebook: reports Jupyter's own activity to the bucket for the operator."""
