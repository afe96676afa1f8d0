"""Text-to-speech engines behind one interface; heavy imports happen only when one is loaded."""
