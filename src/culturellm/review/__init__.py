"""Human review of augmented sets: `culturellm review AUG_DIR` (a local web page recording ratings
per reviewer in AUG_DIR/reviews.jsonl) and `culturellm review AUG_DIR --stats`. See
docs/augmentation.md, "Human review"."""
