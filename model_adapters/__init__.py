"""Model adapters: who answers the questions (baselines, Hugging Face, CLIP, DEEM)."""
