"""Bridges to other libraries (CF-CAM as a pytorch-grad-cam method: :mod:`.pytorch_grad_cam`)."""
