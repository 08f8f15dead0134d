"""Speech engines behind the synthesizer: each one turns a sentence into PCM."""
