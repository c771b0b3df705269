"""Constants shared by every layer of the package, written once."""

#: ImageNet normalisation, as torchvision's ``Normalize`` uses it (the demo model is trained with it too).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

#: Side of the square input the models see.
INPUT_SIZE = 224
