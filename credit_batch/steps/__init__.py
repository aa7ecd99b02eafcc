"""What a run computes: validation, scores, explanations, drift, importance, training, report."""
