"""NNCLR's support set (Dwibedi et al., 2021) for the self-supervised recipe: a queue of recent projections
whose nearest neighbour stands in for a view in the loss.

Two views of one image only teach "the same picture"; the nearest neighbour of a view among thousands of
other images is, more often than not, another image of the same kind, so using it as the positive pulls
similar images together. The queue is part of the training state (checkpointed), so a resume is exact.
"""

from __future__ import annotations

import torch


class Support:
    """A first-in-first-out queue of up to `size` unit vectors."""

    def __init__(self, size: int):
        self.size = size
        self.queue = torch.zeros(0)
        self.next = 0  # where the next vector goes once the queue is full

    @torch.no_grad()
    def nearest(self, z: torch.Tensor) -> torch.Tensor:
        """Each row's most similar vector in the queue (no gradient), or the row itself while the queue is empty."""
        if len(self.queue) == 0:
            return z.detach()
        queue = self.queue.to(z.device, z.dtype)
        return queue[(z @ queue.T).argmax(1)]

    @torch.no_grad()
    def push(self, z: torch.Tensor) -> None:
        z = z.detach().float().cpu()[-self.size:]
        room = self.size - len(self.queue)
        if room > 0:  # still filling; what does not fit replaces the oldest
            self.queue = torch.cat([self.queue.view(-1, z.shape[1]), z[:room]])
            z = z[room:]
        rows = (self.next + torch.arange(len(z))) % self.size
        self.queue[rows] = z
        self.next = int((self.next + len(z)) % self.size)

    def state_dict(self) -> dict:
        return {"queue": self.queue, "next": self.next}

    def load_state_dict(self, state: dict) -> None:
        self.queue, self.next = state["queue"], int(state["next"])
