from dataclasses import dataclass, field

import pytest
from omegaconf import DictConfig
from rq_core.config import ConfigError, cli_main, load_config, save_config
from rq_core.training import TrainerConfig


@dataclass
class DataConfig:
    root: str = "data"
    num_workers: int = 2


@dataclass
class AppConfig:
    lr: float = 0.03
    run_dir: str = "runs/x"
    data: DataConfig = field(default_factory=DataConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)


def test_defaults_then_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 0.1\ndata:\n  root: /datasets/a\ntrainer:\n  max_epochs: 5\n")
    cfg = load_config(
        AppConfig, path, ["data.num_workers=8", "trainer.precision=bf16-mixed", "lr=0.2"]
    )
    assert isinstance(cfg, DictConfig)
    assert cfg.lr == 0.2 and cfg.data.root == "/datasets/a" and cfg.data.num_workers == 8
    assert cfg.trainer.max_epochs == 5 and cfg.trainer.precision == "bf16-mixed"
    assert cfg.trainer.devices == "auto"  # untouched default


def test_values_are_converted_to_the_declared_type():
    cfg = load_config(AppConfig, overrides=["trainer.devices=2", "lr=1"])
    assert cfg.trainer.devices == "2" and isinstance(cfg.lr, float)


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["data.num_worker=3"], "data.num_worker"),
        (["learning_rate=0.1"], "learning_rate"),
        (["data.num_workers=many"], "data.num_workers"),
        (["trainer.max_steps=1.5"], "trainer.max_steps"),
        (["trainer.deterministic=maybe"], "trainer.deterministic"),
        (["data=3"], "data"),
    ],
)
def test_bad_override_key_or_type_names_the_key(overrides, key):
    with pytest.raises(ConfigError, match=f"'{key}'"):
        load_config(AppConfig, overrides=overrides)


def test_bad_file_key_or_type_names_the_key_and_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainer:\n  max_epoch: 3\n")
    with pytest.raises(ConfigError, match=r"'trainer.max_epoch'.*bad.yaml"):
        load_config(AppConfig, path)
    path.write_text("data:\n  num_workers: [1, 2]\n")
    with pytest.raises(ConfigError, match="'data.num_workers'"):
        load_config(AppConfig, path)


def test_malformed_override_and_missing_file_and_missing_value(tmp_path):
    with pytest.raises(ConfigError, match="key.sub=value"):
        load_config(AppConfig, overrides=["lr"])
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_config(AppConfig, tmp_path / "nope.yaml")

    @dataclass
    class NeedsRoot:
        root: str = "???"

    with pytest.raises(ConfigError, match="root"):
        load_config(NeedsRoot)
    assert load_config(NeedsRoot, overrides=["root=/data"]).root == "/data"


def test_dict_defaults_reject_unknown_keys():
    assert load_config({"a": 1}, overrides=["a=2"]).a == 2
    with pytest.raises(ConfigError, match="'b'"):
        load_config({"a": 1}, overrides=["b=2"])


def test_save_config_writes_the_resolved_yaml(tmp_path):
    cfg = load_config(AppConfig, overrides=["lr=0.5"])
    path = save_config(cfg, tmp_path / "run")
    assert path == tmp_path / "run" / "config.yaml"
    assert load_config(AppConfig, path) == cfg


def _pretrain(cfg):
    """Pretrain a model."""
    return ("pretrain", cfg.lr, cfg.trainer.max_steps)


def _evaluate(cfg):
    """Evaluate with a linear probe."""
    return ("evaluate", cfg.lr)


def _cli(argv, tmp_path):
    default = tmp_path / "default.yaml"
    default.write_text("lr: 0.7\n")
    return cli_main(
        {"pretrain": _pretrain, "evaluate": _evaluate},
        {"pretrain": AppConfig, "evaluate": AppConfig},
        {"pretrain": default, "evaluate": None},
        argv=argv,
        prog="rq-test",
    )


def test_cli_uses_the_default_config_file_and_overrides(tmp_path):
    assert _cli(["pretrain", "trainer.max_steps=9"], tmp_path) == ("pretrain", 0.7, 9)
    assert _cli(["evaluate"], tmp_path) == ("evaluate", 0.03)
    other = tmp_path / "other.yaml"
    other.write_text("lr: 0.01\n")
    assert _cli(["pretrain", "--config", str(other)], tmp_path) == ("pretrain", 0.01, -1)


def test_cli_help_lists_commands_and_errors_name_the_key(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        _cli(["--help"], tmp_path)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "pretrain" in out and "evaluate" in out and "Pretrain a model." in out
    with pytest.raises(SystemExit) as exit_info:
        _cli(["pretrain", "trainer.max_stepz=3"], tmp_path)
    assert exit_info.value.code == 2
    assert "trainer.max_stepz" in capsys.readouterr().err


def test_cli_print_config(tmp_path, capsys):
    assert _cli(["evaluate", "--print-config", "lr=0.9"], tmp_path) is None
    assert "lr: 0.9" in capsys.readouterr().out


def test_a_malformed_override_or_yaml_file_is_one_line_naming_it(tmp_path, capsys):
    with pytest.raises(
        ConfigError, match=r"override 'trainer.max_steps=\[1': its value is not valid YAML"
    ):
        load_config(AppConfig, overrides=["trainer.max_steps=[1"])
    broken = tmp_path / "broken.yaml"
    broken.write_text("lr: [0.1\ntrainer: {}\n")
    with pytest.raises(ConfigError) as error:
        load_config(AppConfig, broken)
    assert str(broken) in str(error.value) and "\n" not in str(error.value)
    for argv in (["pretrain", "trainer.max_steps=[1"], ["pretrain", "--config", str(broken)]):
        with pytest.raises(SystemExit) as exit_info:
            _cli(argv, tmp_path)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and len(err.splitlines()) == 1
        assert err.startswith("rq-test pretrain: error: ")


def test_cli_checks_run_dir_before_the_command_runs(tmp_path, capsys):
    ran = []
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        cli_main(
            {"go": ran.append},
            {"go": AppConfig},
            {"go": None},
            argv=["go", f"run_dir={blocker}/run"],
            prog="rq-test",
        )
    assert exit_info.value.code == 2 and ran == []
    err = capsys.readouterr().err
    assert err == (
        f"rq-test go: error: run_dir={blocker}/run: cannot create {blocker}/run: "
        f"{blocker} is a file, not a directory\n"
    )


def test_check_run_dir_names_a_directory_it_cannot_write(tmp_path, monkeypatch):
    """Whether a folder is writable is tried, not read from its mode bits (root may write a
    0o555 folder). A refused try (here simulated) is a one-line ConfigError."""
    import tempfile

    from rq_core.config import check_run_dir

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    with pytest.raises(
        ConfigError,
        match=rf"^run_dir={tmp_path}: {tmp_path} is not writable \(Permission denied\)$",
    ):
        check_run_dir(tmp_path)
    with pytest.raises(
        ConfigError, match=rf"{tmp_path}/a/b cannot be created in {tmp_path} \(Permission denied\)$"
    ):
        check_run_dir(tmp_path / "a" / "b")


def test_check_run_dir_agrees_with_a_real_write_in_a_read_only_folder(tmp_path):
    """A 0o555 folder: refused exactly when creating a folder in it really fails (always for
    a normal user; root may write there, and then the check must let the run go on)."""
    from rq_core.config import check_run_dir

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    locked.chmod(0o555)
    try:
        try:
            (locked / "probe").mkdir()
        except PermissionError:
            writable = False
        else:
            (locked / "probe").rmdir()
            writable = True
        if writable:
            assert check_run_dir(locked / "run") == locked / "run"
        else:
            with pytest.raises(ConfigError, match="cannot be created in"):
                check_run_dir(locked / "run")
    finally:
        locked.chmod(0o755)
