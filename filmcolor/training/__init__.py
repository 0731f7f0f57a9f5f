"""The torch half: the training loop, the networks (ResNet and U-Net generators, PatchGAN critics,
the EfficientNet-Lite0 encoder), the data, the losses and the checkpoints."""
