"""What runs on the Pi: camera, preprocessing, TFLite inference. Never TensorFlow or Keras."""

import os

# OpenCV's own warnings (a truncated PNG, say) would go to stderr beside our one clear line.
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
