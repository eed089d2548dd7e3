"""Test helper: the image jobs on a few digits instead of the whole set."""

import retrograd as rg


def small_digits(monkeypatch, n_train=48, n_test=32):
    """Make the image job load only the first n_train training and n_test test digits."""
    from retrograd.training import image
    load_data = image.load_image_data

    def small(spec, augment=False):
        train_set, test_set, info = load_data(spec, augment)
        return (rg.utils.data.Subset(train_set, range(n_train)),
                rg.utils.data.Subset(test_set, range(n_test)), info)
    monkeypatch.setattr(image, "load_image_data", small)
