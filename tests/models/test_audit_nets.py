"""The audit's built-in networks: the project's ResNet-18 and MTCNN with facenet-pytorch's
weights (read from the sha256-checked wheel, ``weights_only``)."""

from __future__ import annotations

import pytest
import torch

from models.audit_nets import BUILTINS, PNet, ONet, RNet, ResNet18, build_builtin
from models.data import facenet
from models.data.mnist import DataError, default_cache_dir
from models.errors import UsageError


def test_resnet18_has_torchvisions_parameter_count_and_shapes():
    net = ResNet18().eval()
    assert sum(p.numel() for p in net.parameters()) == 11_689_512
    with torch.no_grad():
        assert net(torch.rand(2, 3, 64, 64)).shape == (2, 1000)


def test_mtcnn_nets_run_at_their_sizes():
    with torch.no_grad():
        b, a = PNet().eval()(torch.rand(1, 3, 24, 24))
        assert b.shape == (1, 4, 7, 7) and a.shape == (1, 2, 7, 7)
        assert RNet().eval()(torch.rand(1, 3, 24, 24))[0].shape == (1, 4)
        assert ONet().eval()(torch.rand(1, 3, 48, 48))[1].shape == (1, 10)


def test_a_wheel_with_the_wrong_hash_is_refused(tmp_path):
    d = tmp_path / "facenet"
    d.mkdir()
    (d / facenet.WHEEL_FILE).write_bytes(b"not the wheel")
    with pytest.raises(DataError, match="sha256"):
        facenet.load_mtcnn_state_dict("pnet", tmp_path)
    with pytest.raises(DataError, match="expected name"):
        facenet.load_mtcnn_state_dict("xnet", tmp_path)


@pytest.mark.skipif(not (default_cache_dir() / "facenet" / facenet.WHEEL_FILE).is_file(),
                    reason="facenet-pytorch wheel not cached (stnlab data fetch facenet)")
def test_pretrained_state_dicts_load_strictly():
    for name in ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet"):
        net = build_builtin(name)
        assert not net.training
    sd = facenet.load_mtcnn_state_dict("pnet")
    assert set(sd) == set(PNet().state_dict())


def test_unknown_builtin_is_a_usage_error():
    with pytest.raises(UsageError, match="expected MODEL"):
        build_builtin("vgg16")
    assert set(BUILTINS) >= {"resnet18", "mtcnn-pnet", "stn-c1"}
