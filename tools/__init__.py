"""Scripts that keep generated files in the repository equal to the code."""
