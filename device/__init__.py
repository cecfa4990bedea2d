"""What runs on the Pi: camera, preprocessing, TFLite inference. Never TensorFlow or Keras."""

import os

# Set before OpenCV is first imported, which reads them once:
# - its own warnings (a truncated PNG, say) and ffmpeg's (a damaged video: dozens of lines) would go
#   to stderr beside our one clear line;
# - the largest picture a decoder may allocate (device/sources.py MAX_PIXELS): a 400 KB PNG can
#   declare 20000 x 20000 pixels, 1.2 GB decoded, an out-of-memory kill on a 1-4 GB Pi.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
os.environ.setdefault("OPENCV_IO_MAX_IMAGE_PIXELS", str(50_000_000))
