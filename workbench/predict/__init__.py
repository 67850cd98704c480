"""Use a trained run: predictions on new pictures with class-activation maps (`service`, `images`,
`gradcam`, `models`), and the run's model exported with its preprocessing (`export`)."""
