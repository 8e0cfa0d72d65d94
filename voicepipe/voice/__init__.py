"""What comes in: voice activity detection, the microphone, the listener, speech-to-text."""
