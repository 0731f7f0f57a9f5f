"""Films -> the two unpaired frame sets (trainA B&W, trainB colour)."""
