package org.sensormetrics.consumer;

import java.time.DateTimeException;
import java.time.LocalDate;

/**
 * The common shape of contract timestamps, {@code 2024-01-15T10:30:45.123Z} or with a {@code +HH:MM} offset, read
 * without java.time's formatter: the formatter's general parse (a field map, a resolver, BigDecimal fractions)
 * was a sixth of the poll threads' profile samples. Anything else (lowercase letters, offsets with seconds, years past
 * 9999, values that are no date at all) is left to the formatter, which decides and explains.
 */
final class IsoTimestamp {

    /** Returned when the text is not of the common shape or its instant is outside years 1 to 9999. */
    static final long NOT_PARSED = Long.MIN_VALUE;

    private static final long EARLIEST_MICROS = -62_135_596_800_000_000L; // 0001-01-01T00:00:00Z
    private static final long LATEST_MICROS = 253_402_300_799_999_999L; // 9999-12-31T23:59:59.999999Z

    private IsoTimestamp() {
    }

    /**
     * Microseconds since the epoch, rounded half up like PostgreSQL, for
     * {@code yyyy-MM-ddTHH:mm:ss[.f{1,9}](Z|+HH:MM|-HH:MM)}; {@link #NOT_PARSED} otherwise.
     */
    static long epochMicros(String s) {
        int n = s.length();
        if (n < 20 || s.charAt(4) != '-' || s.charAt(7) != '-' || s.charAt(10) != 'T' || s.charAt(13) != ':'
                || s.charAt(16) != ':') {
            return NOT_PARSED;
        }
        int year = digits(s, 0, 4);
        int month = digits(s, 5, 2);
        int day = digits(s, 8, 2);
        int hour = digits(s, 11, 2);
        int minute = digits(s, 14, 2);
        int second = digits(s, 17, 2);
        if (year < 1 || month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 59) {
            return NOT_PARSED; // also when a digit was missing (-1)
        }
        int i = 19;
        long nanos = 0;
        if (s.charAt(i) == '.') {
            int start = ++i;
            while (i < n && i - start < 9 && isDigit(s.charAt(i))) {
                nanos = nanos * 10 + (s.charAt(i++) - '0');
            }
            int fractionDigits = i - start;
            if (fractionDigits == 0 || i < n && isDigit(s.charAt(i))) {
                return NOT_PARSED; // no digit, or more than nine
            }
            for (int k = fractionDigits; k < 9; k++) {
                nanos *= 10;
            }
        }
        int offsetSeconds;
        if (i == n - 1 && s.charAt(i) == 'Z') {
            offsetSeconds = 0;
        } else if (i == n - 6 && (s.charAt(i) == '+' || s.charAt(i) == '-') && s.charAt(i + 3) == ':') {
            int offsetHours = digits(s, i + 1, 2);
            int offsetMinutes = digits(s, i + 4, 2);
            if (offsetHours < 0 || offsetMinutes < 0 || offsetMinutes > 59 || offsetHours * 60 + offsetMinutes > 18 * 60) {
                return NOT_PARSED;
            }
            offsetSeconds = (s.charAt(i) == '-' ? -1 : 1) * (offsetHours * 3600 + offsetMinutes * 60);
        } else {
            return NOT_PARSED;
        }
        long epochDay;
        try {
            epochDay = LocalDate.of(year, month, day).toEpochDay();
        } catch (DateTimeException noSuchDay) {
            return NOT_PARSED; // e.g. February 30
        }
        long micros = epochMicros(epochDay * 86_400 + hour * 3600L + minute * 60L + second - offsetSeconds, nanos);
        return micros < EARLIEST_MICROS || micros > LATEST_MICROS ? NOT_PARSED : micros;
    }

    /** PostgreSQL keeps microseconds and rounds half up; so does this, so a row matches a direct insert. */
    static long epochMicros(long epochSecond, long nanoOfSecond) {
        return epochSecond * 1_000_000 + nanoOfSecond / 1000 + (nanoOfSecond % 1000 >= 500 ? 1 : 0);
    }

    /** The value of {@code count} decimal digits at {@code from}, or -1 if any of them is not a digit. */
    private static int digits(String s, int from, int count) {
        int value = 0;
        for (int i = from; i < from + count; i++) {
            char c = s.charAt(i);
            if (!isDigit(c)) {
                return -1;
            }
            value = value * 10 + (c - '0');
        }
        return value;
    }

    private static boolean isDigit(char c) {
        return c >= '0' && c <= '9';
    }
}
