"""Model pieces: loading a backbone at a weight format, the prompt, label scoring, the Recogniser."""
