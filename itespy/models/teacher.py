"""Teacher networks (paper Sec. 3.2): 2D pose -> camera R̂ and canonical pose Ŷt = (ĉᵀ ⊗ I3) B.

* :class:`PoseDictionaryTeacher` -- the paper's teacher: a feature extractor (ResFC by default, AGCN for
  Table 7), a head for the K pose coefficients ĉ, a head for the 3-vector camera turned into R̂ by the
  so(3) exponential map, and a trainable pose dictionary B ∈ R^{3K×N}.
* :class:`C3DPOTeacher` -- Table 4's C3DPO-style substitute: the same factorisation trained with C3DPO's
  canonicalisation network Ψ (which must undo random rotations of the canonical pose) instead of L_RIC.
"""
from __future__ import annotations

import torch
from torch import nn

from ..geometry import lift_with_teacher_depth, rotate, rotation_from_6d, so3_exponential_map
from ..skeleton import NUM_JOINTS
from .blocks import AGCNTrunk, ResFCTrunk

_REFERENCE_INIT_STD = 0.01  # reference code: linear weights ~ N(0, 0.01), zero bias
CAMERA_HEADS = {"axis_angle": 3, "six_d": 6}  # camera parameterisation -> numbers the camera head outputs
_IDENTITY_6D = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)  # the six_d head's output is an offset from R̂ = I


class PoseDictionaryTeacher(nn.Module):
    """Pose-dictionary-based teacher (Fig. 3).

    forward(X) returns a dict with
      ``coefficients`` ĉ (B, K), ``camera`` (B, 3) axis-angle [radians] or (B, 6) two 3-vectors (``camera``
      argument: "axis_angle", the authors' so(3) exponential map, or "six_d", geometry.rotation_from_6d),
      ``rotation`` R̂ (B, 3, 3),
      ``canonical`` Ŷt (B, 17, 3) = (ĉᵀ ⊗ I3) B, ``pose_3d`` R̂ Ŷt (B, 17, 3) in the input view
      (model units, root at depth t = 5 when projected with geometry.perspective_project), and
      ``lifted_3d`` (B, 17, 3): the *input* 2D lifted with the depth of R̂ Ŷt, (u·(t + d), v·(t + d), d).

    ``lifted_3d`` is the teacher's 3D estimate as the authors' code scores it (and as the kit scores,
    distils and shows it): the input keypoints are exact, so only the depth is the teacher's to predict.
    R̂ Ŷt itself reprojects onto the input only approximately (L_REP is never zero); scoring it adds that
    reprojection error to every joint. It stays available as the ``dictionary`` diagnostic
    (``Config.teacher_output``)."""

    is_teacher = True

    def __init__(self, num_atoms: int = 12, trunk: str = "resfc", hidden: int = 1024, bottleneck: int = 256,
                 num_blocks: int = 6, dictionary_bias: bool = False, extra_bottleneck: bool = False,
                 reference_init: bool = False, camera: str = "axis_angle"):
        super().__init__()
        if camera not in CAMERA_HEADS:
            raise ValueError(f"camera: expected one of {tuple(CAMERA_HEADS)}, got {camera!r}")
        self.camera = camera
        if num_atoms < 1:
            raise ValueError(f"num_atoms (K): expected a positive integer, got {num_atoms}")
        if trunk == "resfc":
            self.trunk = ResFCTrunk(hidden, bottleneck, num_blocks, extra_bottleneck=extra_bottleneck)
        elif trunk == "agcn":
            self.trunk = AGCNTrunk(hidden, num_blocks)  # channels per joint, graph blocks (no bottleneck)
        else:
            raise ValueError(f"trunk: expected 'resfc' or 'agcn', got {trunk!r}")
        self.num_atoms = num_atoms
        self.coefficient_head = nn.Linear(self.trunk.out_features, num_atoms)
        self.camera_head = nn.Linear(self.trunk.out_features, CAMERA_HEADS[camera])
        # Pose dictionary B: K atoms of shape (17, 3), stored as one linear map K -> 51 (Eq. 1).
        self.pose_dictionary = nn.Linear(num_atoms, NUM_JOINTS * 3, bias=dictionary_bias)
        if reference_init:
            self._reference_init()

    def _reference_init(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=_REFERENCE_INIT_STD)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d):
                nn.init.uniform_(m.weight, 0.0, 1.0)

    def atoms(self) -> torch.Tensor:
        """The dictionary B as (K, 17, 3) atoms B_k."""
        return self.pose_dictionary.weight.t().reshape(self.num_atoms, NUM_JOINTS, 3)

    def shape_from_coefficients(self, coefficients: torch.Tensor) -> torch.Tensor:
        """Ŷt = (ĉᵀ ⊗ I3) B = Σ_k c_k B_k (+ mean pose when the dictionary has a bias): (B, 17, 3)."""
        return self.pose_dictionary(coefficients).reshape(-1, NUM_JOINTS, 3)

    def forward(self, keypoints_2d: torch.Tensor) -> dict:
        features = self.trunk(keypoints_2d)
        coefficients = self.coefficient_head(features)
        camera = self.camera_head(features)
        if self.camera == "six_d":
            rotation = rotation_from_6d(camera + camera.new_tensor(_IDENTITY_6D))
        else:
            rotation = so3_exponential_map(camera)
        canonical = self.shape_from_coefficients(coefficients)
        pose_3d = rotate(canonical, rotation)
        return {"coefficients": coefficients, "camera": camera, "rotation": rotation,
                "canonical": canonical, "pose_3d": pose_3d,
                "lifted_3d": lift_with_teacher_depth(keypoints_2d, pose_3d[..., 2])}


class C3DPOTeacher(PoseDictionaryTeacher):
    """C3DPO-style teacher (Novotny et al. 2019) for Table 4: the factorisation above plus a
    canonicalisation network Ψ: rotated canonical 3D pose (51 numbers) -> coefficients, trained so that
    the shape from Ψ(R Ŷt) equals Ŷt (losses.canonicalisation_loss) instead of the ITES cycle L_RIC."""

    def __init__(self, num_atoms: int = 12, canon_hidden: int = 256, canon_blocks: int = 2, **kwargs):
        super().__init__(num_atoms=num_atoms, **kwargs)
        self.canonicaliser = nn.Sequential(
            ResFCTrunk(canon_hidden, canon_hidden // 2, canon_blocks, in_features=NUM_JOINTS * 3),
            nn.Linear(canon_hidden, num_atoms))

    def canonicalise(self, poses_3d: torch.Tensor) -> torch.Tensor:
        """Ψ: (B, 17, 3) rotated canonical poses -> canonical shapes (B, 17, 3)."""
        return self.shape_from_coefficients(self.canonicaliser(poses_3d))
