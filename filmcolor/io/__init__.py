"""ffmpeg in and out: probe and timing scan, frame readers, the writer, stream planning. No
torch."""
