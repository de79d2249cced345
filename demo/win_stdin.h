/* win_stdin.h: stdin as a socket that select() can watch, for the demos on
 * Windows (kacat, own_loop). Include it once, after <winsock2.h> and
 * <windows.h>, with Winsock started.
 *
 * Windows select() takes sockets only: not the console, not a pipe, not a
 * file. So a reader thread does the blocking ReadFile() on stdin and writes
 * what it got into one end of a loopback TCP connection made for the
 * purpose; the main loop select()s and recv()s on the other end like on any
 * socket. At the end of input (ReadFile fails or reads 0 bytes: a closed
 * pipe, the end of a file, Ctrl+Z Enter on a console) the thread closes its
 * end, and the main loop's recv() returns 0. Backpressure still holds: when
 * the main loop stops reading, the connection's buffers fill, the thread's
 * blocking send() waits, and it stops reading stdin.
 *
 *   win_stdin_start()  starts the thread: 1, 0 if there is no stdin at all
 *                      (nothing to read), -1 on failure
 *   win_stdin_socket   the main loop's end
 *   win_stdin_error    after recv() returned 0: the ReadFile error that
 *                      ended the input, 0 for a plain end of input
 */
#ifndef WIN_STDIN_H
#define WIN_STDIN_H

#include <string.h>

static SOCKET win_stdin_socket = INVALID_SOCKET;
static volatile LONG win_stdin_error;
static HANDLE win_stdin_handle;

/* A connected pair of loopback TCP sockets (Windows has no socketpair()).
 * The accepted peer must be our own connecting socket: another local
 * process could connect to the listener first. Neither end is inherited
 * by child processes (kacat's --exec hooks): a hook holding the writing end
 * would keep the input from ever ending. */
static int win_socket_pair(SOCKET sv[2])
{
    struct sockaddr_in a, mine, peer;
    int alen = sizeof a, mlen = sizeof mine, plen = sizeof peer;
    SOCKET l = socket(AF_INET, SOCK_STREAM, 0);
    sv[0] = sv[1] = INVALID_SOCKET;
    if (l == INVALID_SOCKET) return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&a, sizeof a) == 0 && getsockname(l, (struct sockaddr *)&a, &alen) == 0 &&
        listen(l, 1) == 0 && (sv[1] = socket(AF_INET, SOCK_STREAM, 0)) != INVALID_SOCKET &&
        connect(sv[1], (struct sockaddr *)&a, sizeof a) == 0)
        sv[0] = accept(l, (struct sockaddr *)&peer, &plen);
    closesocket(l);
    if (sv[0] == INVALID_SOCKET || getsockname(sv[1], (struct sockaddr *)&mine, &mlen) != 0 ||
        mine.sin_port != peer.sin_port || mine.sin_addr.s_addr != peer.sin_addr.s_addr) {
        if (sv[0] != INVALID_SOCKET) closesocket(sv[0]);
        if (sv[1] != INVALID_SOCKET) closesocket(sv[1]);
        return -1;
    }
    SetHandleInformation((HANDLE)sv[0], HANDLE_FLAG_INHERIT, 0);
    SetHandleInformation((HANDLE)sv[1], HANDLE_FLAG_INHERIT, 0);
    return 0;
}

/* The reader thread: stdin into the socket until the input ends. */
static DWORD WINAPI win_stdin_thread(LPVOID arg)
{
    SOCKET s = (SOCKET)arg;
    char buf[16384];
    DWORD n, off;
    for (;;) {
        if (!ReadFile(win_stdin_handle, buf, sizeof buf, &n, NULL)) {
            DWORD e = GetLastError();
            if (e != ERROR_BROKEN_PIPE && e != ERROR_HANDLE_EOF) InterlockedExchange(&win_stdin_error, (LONG)e);
            break;
        }
        if (n == 0) break;
        for (off = 0; off < n; ) {
            int w = send(s, buf + off, (int)(n - off), 0);
            if (w <= 0) goto done;      /* the main loop closed its end: it wants no more */
            off += (DWORD)w;
        }
    }
done:
    shutdown(s, SD_SEND);
    closesocket(s);
    return 0;
}

static int win_stdin_start(void)
{
    SOCKET sv[2];
    HANDLE th;
    win_stdin_handle = GetStdHandle(STD_INPUT_HANDLE);
    if (win_stdin_handle == NULL || win_stdin_handle == INVALID_HANDLE_VALUE) return 0;
    if (win_socket_pair(sv) != 0) return -1;
    th = CreateThread(NULL, 0, win_stdin_thread, (LPVOID)sv[1], 0, NULL);
    if (!th) { closesocket(sv[0]); closesocket(sv[1]); return -1; }
    CloseHandle(th);            /* it runs until the input ends, or the process does */
    win_stdin_socket = sv[0];
    return 1;
}

#endif /* WIN_STDIN_H */
