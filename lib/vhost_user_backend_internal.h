/* SPDX-License-Identifier: MIT */
/* Shared between lib/vhost_user_backend.c (messages) and
 * lib/vhost_user_backend_queue.c (ring threads); not for devices. */
#ifndef ISOLA_LIB_VHOST_USER_BACKEND_INTERNAL_H
#define ISOLA_LIB_VHOST_USER_BACKEND_INTERNAL_H

#include "lib/vhost_user_backend.h"

int backend_queue_maybe_start(struct vhost_user_backend *be, struct vhost_user_backend_queue *q);
void backend_queue_stop(struct vhost_user_backend *be, struct vhost_user_backend_queue *q);
void backend_queue_close_fds(struct vhost_user_backend_queue *q);
/* Stop every running ring; returns the mask of those that were running. */
unsigned backend_stop_all(struct vhost_user_backend *be);
void backend_restart(struct vhost_user_backend *be, unsigned mask);

#endif
