/* Open-loop HTTP/1.1 load generator for benchmarks/api.py (wrk2-style constant rate).
 *
 *   gcc -O2 -o loadgen benchmarks/loadgen.c
 *   loadgen PORT PATHS_FILE CONNS RATE WARMUP_S SECONDS DRAIN_S
 *
 * CONNS keep-alive connections to 127.0.0.1:PORT, one request in flight on each (no
 * pipelining). Paced (RATE > 0): request i is due at t0 + i / RATE and belongs to
 * connection i % CONNS, so arrivals are evenly spaced whatever the server does; a request
 * whose connection is still busy goes out late, and its latency still counts from its due
 * time (no coordinated omission). Closed loop (RATE 0): each connection sends its next
 * request as soon as the previous response is in; latency counts from the send.
 * Requests due in the first WARMUP_S seconds are sent but not recorded; the measured ones
 * are due over the next SECONDS. After the last one is due, outstanding requests get
 * DRAIN_S seconds; whatever is still unanswered then counts as a timeout.
 * Request i asks for line i % n of PATHS_FILE. Responses are read by Content-Length only.
 *
 * Output on stdout: one line per measured response (any status): its due (paced) or send
 * time in ms after the measured window opened, and its latency in microseconds; then
 * one line "# key=value ..." with the counters (errors: requests lost to a reset or a bad
 * response, warm-up included; timeouts: measured requests unanswered at the end), the
 * measured wall time (first measured due time to last measured response), this process's
 * CPU time and its own send delay (p99 and max; from the due time, or from when the
 * connection came free if later, to the send). Exit 2 on bad arguments or when
 * 127.0.0.1:PORT refuses the first connection.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONNS 1024
#define MAX_PATHS 100000
#define HEAD_MAX 8192

enum state { IDLE, SENDING, READING };

struct conn {
    int fd;
    enum state st;
    long next;        /* next request index of this connection */
    long cur;         /* index in flight */
    double due;       /* due (paced) or send (closed loop) time of the request in flight */
    double idle_at;   /* when the connection last became free */
    const char *req;
    size_t req_len, req_off;
    char head[HEAD_MAX];
    size_t head_len;
    int head_done, status, close_after;
    long body_left;
};

static struct conn conns[MAX_CONNS];
static int nconns, port, epfd, tfd;
static char **reqs;
static size_t *req_lens;
static long npaths;
static double rate, warmup, seconds, drain, t0;
static long total, first_measured, cap, counter;
static int stopped; /* closed loop: the measured window is over, send nothing more */
static uint32_t *lat_us, *late_us, *due_ms;
static long nlate;
static long nlat, completed, non200, errors, reconnects;
static double last_done, gen_late_max;

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double due_of(long i) { return t0 + (double)i / rate; }

static int measured(const struct conn *c) {
    if (rate > 0) return c->cur >= first_measured;
    return c->due >= t0 + warmup;
}

static int open_conn(struct conn *c) {
    struct sockaddr_in addr;
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0) return -1;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev);
    c->st = IDLE;
    c->idle_at = now();
    return 0;
}

static void drop_conn(struct conn *c, int failed) {
    if (failed) errors++;
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->st = IDLE;
    c->idle_at = now();
    reconnects++;
    open_conn(c); /* on failure fd stays -1: retried before the next send */
}

static void try_send(struct conn *c);

static void finish(struct conn *c, double t) {
    if (measured(c)) {
        double lat = t - c->due;
        if (nlat < cap) {
            double off = (c->due - (t0 + warmup)) * 1e3;
            due_ms[nlat] = off > 0 ? (uint32_t)off : 0;
            lat_us[nlat++] = (uint32_t)(lat * 1e6 + 0.5);
        }
        completed++;
        if (c->status != 200) non200++;
        last_done = t;
    }
    c->st = IDLE;
    c->idle_at = t;
    if (c->close_after) drop_conn(c, 0);
}

static void on_readable(struct conn *c) {
    char buf[65536];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof buf);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            drop_conn(c, c->st != IDLE);
            return;
        }
        if (n < 0) return;
        if (c->st != READING) { /* bytes nobody asked for */
            drop_conn(c, 1);
            return;
        }
        size_t off = 0;
        if (!c->head_done) {
            size_t take = (size_t)n;
            if (take > HEAD_MAX - 1 - c->head_len) take = HEAD_MAX - 1 - c->head_len;
            memcpy(c->head + c->head_len, buf, take);
            size_t old = c->head_len;
            c->head_len += take;
            c->head[c->head_len] = 0;
            char *end = strstr(c->head, "\r\n\r\n");
            if (end == NULL) {
                if (c->head_len >= HEAD_MAX - 1) {
                    drop_conn(c, 1);
                    return;
                }
                continue;
            }
            size_t head_size = (size_t)(end - c->head) + 4;
            off = head_size - old; /* body starts here in buf */
            c->head_done = 1;
            c->status = (int)strtol(c->head + 9, NULL, 10);
            c->close_after = strncmp(c->head, "HTTP/1.0", 8) == 0; /* 1.0: no keep-alive */
            c->body_left = -1;
            for (char *line = strstr(c->head, "\r\n"); line && line < end;
                 line = strstr(line + 2, "\r\n")) {
                char *h = line + 2;
                if (strncasecmp(h, "content-length:", 15) == 0)
                    c->body_left = strtol(h + 15, NULL, 10);
                else if (strncasecmp(h, "connection:", 11) == 0 && strcasestr(h, "close") &&
                         strcasestr(h, "close") < strstr(h, "\r\n"))
                    c->close_after = 1;
            }
            if (strncmp(c->head, "HTTP/1.", 7) != 0 || c->body_left < 0) {
                drop_conn(c, 1); /* no Content-Length (chunked): not supported */
                return;
            }
        }
        c->body_left -= (long)((size_t)n - off);
        if (c->body_left < 0) {
            drop_conn(c, 1);
            return;
        }
        if (c->body_left == 0) {
            finish(c, now());
            if (c->fd < 0 || c->st != IDLE) return;
            if (rate <= 0) try_send(c);
            return;
        }
    }
}

static void on_writable(struct conn *c) {
    while (c->req_off < c->req_len) {
        ssize_t n = write(c->fd, c->req + c->req_off, c->req_len - c->req_off);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
        if (n < 0) {
            drop_conn(c, 1);
            return;
        }
        c->req_off += (size_t)n;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->st = READING;
}

/* Send the connection's next request if it is idle and the request is due. */
static void try_send(struct conn *c) {
    double t = now();
    if (c->st != IDLE) return;
    if (rate > 0) {
        if (c->next >= total) return;
        double due = due_of(c->next);
        if (due > t) return;
        /* the generator's own delay: from when it could have sent (due, connection free) */
        double ready = due > c->idle_at ? due : c->idle_at;
        if (t - ready > gen_late_max) gen_late_max = t - ready;
        if (c->next >= first_measured && nlate < cap)
            late_us[nlate++] = (uint32_t)((t - ready) * 1e6 + 0.5);
        c->due = due;
        c->cur = c->next;
        c->next += nconns;
    } else {
        if (stopped || t >= t0 + warmup + seconds) {
            stopped = 1;
            return;
        }
        c->due = t;
        c->cur = counter++;
    }
    if (c->fd < 0 && open_conn(c) < 0) {
        errors++; /* the request fails: nothing listens */
        return;
    }
    c->req = reqs[c->cur % npaths];
    c->req_len = req_lens[c->cur % npaths];
    c->req_off = 0;
    c->head_len = 0;
    c->head_done = 0;
    c->close_after = 0;
    c->st = SENDING;
    on_writable(c);
}

static void arm_timer(void) {
    double next = 0;
    for (int i = 0; i < nconns; i++) {
        struct conn *c = &conns[i];
        if (c->st == IDLE && c->next < total) {
            double d = due_of(c->next);
            if (next == 0 || d < next) next = d;
        }
    }
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (next > 0) {
        its.it_value.tv_sec = (time_t)next;
        its.it_value.tv_nsec = (long)((next - (double)(time_t)next) * 1e9);
        if (its.it_value.tv_sec == 0 && its.it_value.tv_nsec == 0) its.it_value.tv_nsec = 1;
    }
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static int load_paths(const char *file) {
    FILE *f = fopen(file, "r");
    char line[2048];
    if (f == NULL) return -1;
    reqs = calloc(MAX_PATHS, sizeof *reqs);
    req_lens = calloc(MAX_PATHS, sizeof *req_lens);
    while (npaths < MAX_PATHS && fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (line[0] == 0) continue;
        char *r = malloc(strlen(line) + 128);
        int n = sprintf(r, "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: */*\r\n\r\n", line,
                        port);
        reqs[npaths] = r;
        req_lens[npaths++] = (size_t)n;
    }
    fclose(f);
    return npaths > 0 ? 0 : -1;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s PORT PATHS_FILE CONNS RATE WARMUP_S SECONDS DRAIN_S\n",
                argv[0]);
        return 2;
    }
    port = atoi(argv[1]);
    nconns = atoi(argv[3]);
    rate = atof(argv[4]);
    warmup = atof(argv[5]);
    seconds = atof(argv[6]);
    drain = atof(argv[7]);
    if (port <= 0 || nconns <= 0 || nconns > MAX_CONNS || rate < 0 || warmup < 0 ||
        seconds <= 0 || drain < 0 || load_paths(argv[2]) < 0) {
        fprintf(stderr, "loadgen: bad arguments or empty paths file\n");
        return 2;
    }
    if (rate > 0) {
        total = (long)(rate * (warmup + seconds));
        first_measured = (long)(rate * warmup);
        cap = total;
    } else {
        cap = (long)(100000 * seconds) + 1; /* more than loopback HTTP can do here */
    }
    lat_us = malloc((size_t)cap * sizeof *lat_us);
    late_us = malloc((size_t)cap * sizeof *late_us);
    due_ms = malloc((size_t)cap * sizeof *due_ms);
    if (lat_us == NULL || late_us == NULL || due_ms == NULL) return 2;
    epfd = epoll_create1(0);
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    struct epoll_event tev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(epfd, EPOLL_CTL_ADD, tfd, &tev);
    for (int i = 0; i < nconns; i++) {
        conns[i].next = i;
        if (open_conn(&conns[i]) < 0) {
            fprintf(stderr, "loadgen: cannot connect to 127.0.0.1:%d\n", port);
            return 2;
        }
    }

    struct rusage ru0;
    getrusage(RUSAGE_SELF, &ru0);
    t0 = now() + 0.05;
    double sched_end = rate > 0 ? due_of(total - 1) : t0 + warmup + seconds;
    double deadline = sched_end + drain;
    static struct epoll_event evs[MAX_CONNS + 1];
    for (;;) {
        double t = now();
        if (t >= deadline) break;
        int busy = 0, pending = 0;
        for (int i = 0; i < nconns; i++) {
            if (conns[i].st == IDLE) try_send(&conns[i]);
            if (conns[i].st != IDLE) busy = 1;
            if (rate > 0 ? conns[i].next < total : !stopped) pending = 1;
        }
        if (!busy && !pending) break;
        if (rate > 0) arm_timer();
        int timeout_ms = rate > 0 ? (int)((deadline - t) * 1000) + 1 : 100;
        int n = epoll_wait(epfd, evs, MAX_CONNS + 1, timeout_ms);
        for (int k = 0; k < n; k++) {
            struct conn *c = evs[k].data.ptr;
            if (c == NULL) {
                uint64_t ticks;
                if (read(tfd, &ticks, sizeof ticks) < 0) { /* EAGAIN: nothing to clear */
                }
                continue;
            }
            if (c->fd < 0) continue;
            if ((evs[k].events & EPOLLOUT) && c->st == SENDING) on_writable(c);
            if (evs[k].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
        }
    }
    /* Unanswered measured requests: in flight now, or due and never sent. */
    long timeouts = 0;
    if (rate > 0) {
        for (int i = 0; i < nconns; i++) {
            struct conn *c = &conns[i];
            if (c->st != IDLE && c->cur >= first_measured) timeouts++;
            for (long j = c->next; j < total; j += nconns)
                if (j >= first_measured) timeouts++;
        }
    } else {
        for (int i = 0; i < nconns; i++)
            if (conns[i].st != IDLE && conns[i].due >= t0 + warmup) timeouts++;
    }
    struct rusage ru1;
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec) / 1e6 +
                 (double)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                 (double)(ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) / 1e6;
    double start = t0 + warmup;
    double wall = (last_done > start ? last_done : now()) - start;
    if (rate <= 0) wall = seconds;
    double late_p99 = 0;
    if (nlate > 0) {
        qsort(late_us, (size_t)nlate, sizeof *late_us, cmp_u32);
        late_p99 = late_us[(long)(0.99 * (double)(nlate - 1))] / 1e6;
    }
    for (long i = 0; i < nlat; i++) printf("%u %u\n", due_ms[i], lat_us[i]);
    printf("# scheduled=%ld completed=%ld non200=%ld errors=%ld timeouts=%ld reconnects=%ld "
           "wall=%.6f cpu=%.3f gen_late_max=%.6f gen_late_p99=%.6f\n",
           rate > 0 ? total - first_measured : completed + timeouts, completed, non200, errors,
           timeouts, reconnects, wall, cpu, gen_late_max, late_p99);
    return 0;
}
