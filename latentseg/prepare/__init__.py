"""Survey -> model input: cleaning, opportunity scores, reduction, levels and encodings."""
