"""Format 1 (condgan before named fields: class_names + config + gan), read only: upgraded to format 2 on load,
so runs and exports written by older condgan still sample, resume and evaluate (tests/fixtures/v1)."""

from __future__ import annotations

V1_NETWORKS = {"resnet": ("ResNetGenerator", "ProjectionDiscriminator"), "dcgan": ("DCGANGenerator", "DCGANDiscriminator"),
               "mlp": ("MLPGenerator", "MLPDiscriminator")}


def v1_networks(config: dict, num_classes: int) -> dict:
    """The {'class', 'arguments'} of a format-1 run's G and D, read from its config (format 1 recorded no more)."""
    m, d = config["model"], config["data"]
    g_class, d_class = V1_NETWORKS[m["arch"]]
    networks = {"G": {"class": g_class, "arguments": {"num_classes": num_classes, "z_dim": m["z_dim"], "channels": d["channels"],
                                                      "image_size": d["image_size"], "width": m["g_width"]}},
                "D": {"class": d_class, "arguments": {"num_classes": num_classes, "channels": d["channels"],
                                                      "image_size": d["image_size"], "width": m["d_width"]}}}
    if m["arch"] == "resnet":  # format 1 always built the class head; now it exists only when trained
        aux = config.get("train", {}).get("aux_weight")
        networks["D"]["arguments"]["class_head"] = aux is None or aux > 0
    return networks


def upgrade_v1(obj: dict) -> dict:
    """A format-1 checkpoint (class_names, config, gan) as format 2."""
    from ..conditions import class_spec

    config, names = dict(obj["config"]), list(obj["class_names"])
    networks = v1_networks(config, len(names))
    state = dict(obj["gan"])
    if networks["D"]["arguments"].get("class_head") is False:  # drop the unused head and its optimiser slots
        state["D"] = {k: v for k, v in state["D"].items() if not k.startswith("classifier.")}
        state["opt_D"] = _drop_last_params(state["opt_D"], 2)
    config.setdefault("task", "cgan")
    upgraded = {k: v for k, v in obj.items() if k not in ("gan", "class_names")}
    upgraded.update(version=2, task="cgan", config=config, networks=networks, state=state,
                    spec=class_spec(names, config["data"]["channels"], config["data"]["image_size"]).to_dict())
    return upgraded


def _drop_last_params(opt_state: dict, n: int) -> dict:
    params = opt_state["param_groups"][0]["params"]
    dropped = set(params[-n:])
    groups = [dict(opt_state["param_groups"][0], params=params[:-n])] + opt_state["param_groups"][1:]
    return {"state": {k: v for k, v in opt_state["state"].items() if k not in dropped}, "param_groups": groups}
