package org.sensormetrics.consumer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.DateTimeException;
import java.time.Instant;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.time.temporal.ChronoUnit;
import java.util.List;
import java.util.Random;

import org.junit.jupiter.api.Test;

/** The fast path for common timestamps gives what java.time's formatter gives, or leaves the text to it. */
class IsoTimestampTest {

    @Test
    void agreesWithTheFormatterOnCommonShapes() {
        Random random = new Random(7);
        for (int i = 0; i < 200_000; i++) {
            long seconds = random.nextLong(-62_135_596_800L, 253_402_300_800L);
            String fraction = switch (i % 4) {
                case 0 -> "";
                case 1 -> String.format(".%03d", random.nextInt(1000));
                case 2 -> String.format(".%06d", random.nextInt(1_000_000));
                default -> String.format(".%09d", random.nextInt(1_000_000_000)).substring(0, 2 + random.nextInt(9));
            };
            int offsetMinutes = i % 3 == 0 ? 0 : random.nextInt(-18 * 60, 18 * 60 + 1);
            String offset = offsetMinutes == 0 && i % 2 == 0 ? "Z"
                    : String.format("%s%02d:%02d", offsetMinutes < 0 ? "-" : "+", Math.abs(offsetMinutes) / 60, Math.abs(offsetMinutes) % 60);
            String local = java.time.LocalDateTime.ofEpochSecond(seconds, 0, java.time.ZoneOffset.UTC).toString();
            String text = (local.length() == 16 ? local + ":00" : local) + fraction + offset;
            long fast = IsoTimestamp.epochMicros(text);
            Long slow = slow(text);
            if (fast != IsoTimestamp.NOT_PARSED) {
                assertEquals(slow, fast, text);
            } else {
                // declined only where the offset moves the instant out of years 1 to 9999
                assertTrue(slow < -62_135_596_800_000_000L || slow > 253_402_300_799_999_999L, text);
            }
        }
    }

    @Test
    void readsTheContractExamples() {
        assertEquals(slow("2024-01-15T10:30:45.123Z"), IsoTimestamp.epochMicros("2024-01-15T10:30:45.123Z"));
        assertEquals(slow("2024-01-15T10:30:45.1234565+02:00"), IsoTimestamp.epochMicros("2024-01-15T10:30:45.1234565+02:00"));
        assertEquals(slow("1969-12-31T23:59:59.9999995Z"), IsoTimestamp.epochMicros("1969-12-31T23:59:59.9999995Z"));
        assertEquals(slow("2024-02-29T00:00:00-18:00"), IsoTimestamp.epochMicros("2024-02-29T00:00:00-18:00"));
    }

    @Test
    void leavesEverythingElseToTheFormatter() {
        for (String text : List.of("2024-02-30T10:00:00Z", "2023-02-29T10:00:00Z", "2024-01-15T24:00:00Z", "2024-01-15T10:60:00Z",
                "2024-01-15T10:30:60Z", "2024-13-01T10:00:00Z", "2024-00-01T10:00:00Z", "0000-01-01T00:00:00Z",
                "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59.9999996Z", "2024-01-15T10:30:45.Z",
                "2024-01-15T10:30:45.1234567890Z", "2024-01-15T10:30:45+18:30", "2024-01-15T10:30:45+1:00",
                "2024-01-15t10:30:45z", "2024-01-15T10:30Z", "2024-01-15T10:30:45", "2024-01-15T10:30:45+02:00:00",
                "2024-01-15T10:30:45 Z", "+2024-01-15T10:30:45Z", "2024-1-15T10:30:45Z", "2024-01-15T10:30:45ZZ", "")) {
            assertEquals(IsoTimestamp.NOT_PARSED, IsoTimestamp.epochMicros(text), text);
        }
    }

    /** java.time's ISO parse, rounded half up to microseconds with java.time too. */
    private static Long slow(String text) {
        try {
            Instant time = OffsetDateTime.parse(text, DateTimeFormatter.ISO_OFFSET_DATE_TIME).toInstant();
            Instant rounded = time.plusNanos(500).truncatedTo(ChronoUnit.MICROS);
            return rounded.getEpochSecond() * 1_000_000 + rounded.getNano() / 1000;
        } catch (DateTimeException e) {
            return null;
        }
    }
}
