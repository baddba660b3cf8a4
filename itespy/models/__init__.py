"""Networks of ITES: teachers (Sec. 3.2), students (Sec. 3.3) and their graph convolutions."""
from __future__ import annotations

from .student import AGCNStudent, ResFCStudent, SemGCNStudent
from .teacher import C3DPOTeacher, PoseDictionaryTeacher


def build_teacher(cfg):
    """The teacher a Config asks for (dictionary teacher with ResFC/AGCN trunk, or C3DPO-style)."""
    kwargs = dict(num_atoms=cfg.num_atoms, trunk=cfg.teacher_trunk, hidden=cfg.teacher_hidden,
                  bottleneck=cfg.teacher_bottleneck, num_blocks=cfg.teacher_blocks,
                  dictionary_bias=cfg.dictionary_bias, extra_bottleneck=cfg.extra_bottleneck,
                  reference_init=cfg.reference_init, camera=cfg.camera)
    cls = C3DPOTeacher if cfg.teacher == "c3dpo" else PoseDictionaryTeacher
    return cls(**kwargs)


def build_student(cfg):
    """The student a Config asks for (paper AGCN, reference SemGCN, or ResFC)."""
    if cfg.student == "agcn":
        return AGCNStudent(cfg.student_channels, cfg.student_blocks, cfg.graph)
    if cfg.student == "semgcn":
        return SemGCNStudent(cfg.student_channels, cfg.student_blocks)
    return ResFCStudent(cfg.teacher_hidden, cfg.teacher_bottleneck, cfg.teacher_blocks)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
